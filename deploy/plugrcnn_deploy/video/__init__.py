"""Running an exported model on frames: letterboxing (frames), the threaded video pipeline
(pipeline), per-stage timing (stats) and the benchmark (bench)."""
