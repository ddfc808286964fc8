"""Array math kernels (NumPy reference; CuPy twins take the same arguments)."""
