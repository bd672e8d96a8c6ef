//! Parse + normalize of a ~100 KB MIME mail with two attachments, the pure core of the email
//! functions; and the reply splitter on half a million quoted lines (it must stay linear: it
//! was quadratic, minutes on this input). Run: `cargo bench -p throughline-email`.

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use throughline_email::mail::{Envelope, Verdicts, normalize, split_reply};
use throughline_model::{EmailAddress, Provider, StoredObject};

/// A reply with an HTML alternative, an inline image and a PDF: about 100 KB on the wire.
fn mail() -> Vec<u8> {
    let base64 = |bytes: usize, seed: u8| {
        use base64::Engine as _;
        let data: Vec<u8> = (0..bytes)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        let text = base64::engine::general_purpose::STANDARD.encode(data);
        text.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let text = "Hello,\r\n\r\nThe box arrived damaged, photos and the invoice attached.\r\n\r\n-- \r\nAda\r\n\r\nOn Tue, 24 Nov 2026 at 09:30, Acme Support <support@acme.example> wrote:\r\n> Could you send us a photo?\r\n";
    format!(
        "From: Ada Lovelace <Ada@Example.com>\r\nTo: support@acme.example\r\nSubject: Photos of the damaged box\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-1@mail.example.com>\r\n\
         In-Reply-To: <acme-answer-1@acme.example>\r\nReferences: <q1@mail.example.com> <acme-answer-1@acme.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello,</p><p>The box arrived damaged.</p><img src=\"cid:photo1@acme\">\r\n\
         --alt--\r\n\
         --outer\r\nContent-Type: image/png\r\nContent-ID: <photo1@acme>\r\nContent-Disposition: inline; filename=\"box.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"invoice-1042.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice-1042.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--outer--\r\n",
        base64(30_000, 1),
        base64(42_000, 2)
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let raw = mail();
    assert!((95_000..110_000).contains(&raw.len()), "{} bytes", raw.len());
    let envelope = Envelope {
        provider: Provider::Ses,
        mailbox: EmailAddress::parse("support@acme.example").unwrap(),
        delivery_id: "bench".into(),
        verdicts: Verdicts::default(),
        stored: Some(StoredObject {
            bucket: "mail".into(),
            key: "inbound/bench".into(),
        }),
        received_at: Utc::now(),
    };
    let interaction = normalize(&raw, &envelope).unwrap();
    assert_eq!(interaction.attachments.len(), 2);
    c.bench_function("email_parse_normalize_100kb_2_attachments", |b| {
        b.iter(|| normalize(black_box(&raw), &envelope))
    });

    // "hi", 500 000 lines of ">", "bye": 1 MB, a quoted run that does not last to the end.
    let quoted = format!("hi\n{}bye\n", ">\n".repeat(500_000));
    assert_eq!(split_reply(&quoted).1, "");
    c.bench_function("email_split_reply_500k_quoted_lines", |b| {
        b.iter(|| split_reply(black_box(&quoted)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
