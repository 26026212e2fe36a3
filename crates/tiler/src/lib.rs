//! ballast tiler (not built yet).
