"""The DataFrame API: :func:`build_mixture` over a DataFrame in hand (notebooks, pipelines, the job)."""
