//! `tern`: run a node, talk to a cluster, make certificates, or run the demo.
fn main() {
    todo!("cli helper")
}
