"""A user's own package, as the tests see it: ``mypkg.envs`` registers ``Line-v0``."""
