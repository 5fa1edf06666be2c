"""Entry points, one per stage: ``python -m pipelines.<stage> key=value ...``.

Each is a thin shell: compose the Hydra config from ``conf/``, start or join Ray, call
the library in ``autotag/``. ``run(cfg) -> dict`` is what tests and other stages call.
"""
