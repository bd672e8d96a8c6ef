//! What a message's text may be before it becomes an interaction (web chat and Telegram alike).

/// Longest text accepted, in bytes of UTF-8: far above a chat message (Telegram's own limit is
/// 4096 characters) and far below the 256 KiB an interaction must fit into on the queue.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// The text an interaction gets, or the problem with it (never quoting it): at most
/// `MAX_TEXT_BYTES`, Unicode noncharacters removed, `None` when nothing is left.
pub fn message_text(text: &str) -> Result<Option<String>, String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("is longer than {MAX_TEXT_BYTES} bytes"));
    }
    Ok(Some(without_noncharacters(text)).filter(|t| !t.is_empty()))
}

/// The text without Unicode noncharacters (`throughline_model::is_noncharacter`), so that a
/// text made only of them is no text at all.
pub fn without_noncharacters(text: &str) -> String {
    text.chars()
        .filter(|c| !throughline_model::is_noncharacter(*c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noncharacters_are_removed_and_everything_else_kept() {
        assert_eq!(
            without_noncharacters("a\u{FDD0}b\u{FDEF}c\u{FFFE}d\u{FFFF}e\u{1FFFE}f\u{10FFFF}g"),
            "abcdefg"
        );
        // Neighbours of the noncharacters are ordinary characters.
        let kept = "\u{FDCF}\u{FDF0}\u{FFFD}\u{1FFFD}é😀\u{200B}";
        assert_eq!(without_noncharacters(kept), kept);
    }

    #[test]
    fn text_is_capped_and_empty_text_is_none() {
        assert_eq!(message_text("hi\u{FFFF}"), Ok(Some("hi".into())));
        assert_eq!(message_text("\u{FDD0}"), Ok(None));
        assert_eq!(message_text(""), Ok(None));
        let at_cap = "é".repeat(MAX_TEXT_BYTES / 2);
        assert_eq!(message_text(&at_cap), Ok(Some(at_cap.clone())));
        assert!(message_text(&format!("{at_cap}x")).is_err());
    }
}
