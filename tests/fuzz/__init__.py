"""Mutation fuzzing of every reader: values or the project's error, within a time bound."""
