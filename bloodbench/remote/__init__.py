"""Work done on another machine: the GPU one-shot that packs its results, and the import that brings them into the store."""
