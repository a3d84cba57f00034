"""images: where each image's bytes are (loose files, tar shards, index files), in one
persisted index that every later stage asks instead of walking the image root."""
