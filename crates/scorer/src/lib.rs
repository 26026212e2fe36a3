//! ballast scorer (not built yet).
