// Placeholder: replaced by the Tokenizer implementation.
