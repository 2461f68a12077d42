"""The transformer encoder: a Hugging Face / sentence-transformers folder as a batch ``encode`` function.
"""
