"""``voxa <group> <verb>``: a thin layer over the library."""
