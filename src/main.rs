fn main() {
    let code = nexus::main_with_args(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
