fn main() -> std::process::ExitCode {
    ballast_cli::not_built_yet("tiler")
}
