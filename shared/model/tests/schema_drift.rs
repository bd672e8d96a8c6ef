//! The published JSON Schema must be the one the code generates.
//! After changing the model, regenerate it with `cargo xtask schema`.

#[test]
fn committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/interaction.schema.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == throughline_model::json_schema(),
        "{path} is out of date with the Rust types: run `cargo xtask schema` and commit the result"
    );
}
