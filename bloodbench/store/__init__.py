"""The results store: records and their schema, saved predictions, verdicts on finished runs, benchmark JSON, crash-safe files and the user cache."""
