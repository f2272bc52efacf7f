"""Pure decisions over records: who may do what, which tags may move. No I/O."""
