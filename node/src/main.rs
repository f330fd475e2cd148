fn main() {
    eprintln!("paxos-node: not built yet");
    std::process::exit(2);
}
