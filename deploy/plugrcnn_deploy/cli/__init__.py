"""The deploy commands of `plugrcnn`: export (export), video (video), bench (bench); shared
arguments in common."""
