"""A third-party plugrcnn head used by the tests: regresses log(object area) per instance."""
