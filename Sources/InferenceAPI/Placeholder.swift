// Placeholder: replaced by the InferenceAPI implementation.
