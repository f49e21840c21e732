"""Stage 1, the pilots' evidence: the pilot table (the one file format every later stage
reads), its table files and validation, the converters of published runs, the designs that plan
pilots, and simulated pilots from known parameters."""
