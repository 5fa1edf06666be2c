"""Published pretrained models converted into autotag checkpoints (no TensorFlow needed).

- :mod:`autotag.pretrained.tf_checkpoint`: a pure-python reader of TensorFlow checkpoints.
- :mod:`autotag.pretrained.musicnn`: musicnn's MTT and MSD taggers (ISC licence).
"""
