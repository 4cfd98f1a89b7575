// PLACEHOLDER: filled in by its author
