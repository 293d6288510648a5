"""Operators: thin wrappers that read their properties into an options value,
call one bridge function, and report the outcome."""
