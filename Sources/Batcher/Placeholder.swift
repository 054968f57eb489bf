// Placeholder: replaced by the Batcher implementation.
