"""The distributed stages around the core: read, embed (with the Delta cache), task statistics, selection,
output frames, the session.
"""
