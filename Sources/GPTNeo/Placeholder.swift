// Placeholder: replaced by the GPTNeo implementation.
