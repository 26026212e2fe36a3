//! ballast trainer (not built yet).
