"""Neural building blocks and the trainer every voxa neural model shares."""
