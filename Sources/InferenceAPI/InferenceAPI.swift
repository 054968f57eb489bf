// The API layer lands with issue 6.
