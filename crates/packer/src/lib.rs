//! ballast packer (not built yet).
