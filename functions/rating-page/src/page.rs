//! The rating page, pure: what a request asks (`parse_request`), whether its link is one we
//! signed (`check_token`), and the HTML answered (`render`, `render_error`). The page shows
//! nothing the customer typed and nothing about them: five buttons, then a remark box. No
//! script; the one style sheet is allowed by its hash in the Content-Security-Policy.

use std::fmt;

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use throughline_edge::signature::{Encoding, encode, sha256};
use throughline_feedback::link::MAX_REMARK_CHARS;
use throughline_feedback::{FeedbackToken, TokenError};
use throughline_model::ErrorCode;

/// Where the page is served: `/feedback/{token}`.
pub const PATH_PREFIX: &str = "/feedback/";

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// `GET` (or `HEAD`): the question.
    Show { token: String },
    /// `POST`: a rating, with a remark when the customer wrote one.
    Answer { token: String, answer: AnswerForm },
}

impl PageRequest {
    pub fn token(&self) -> &str {
        match self {
            PageRequest::Show { token } | PageRequest::Answer { token, .. } => token,
        }
    }
}

/// A submitted form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerForm {
    /// 1 (poor) to 5 (great).
    pub rating: u8,
    pub remark: Option<String>,
    /// The id of the form shown (`form_id`): the same form submitted twice is one answer.
    pub form: String,
}

/// Why the page cannot answer as asked. One vocabulary with every other error
/// (`ErrorCode`): a browser gets it as a page, any other client as the JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// No such page (another path, or a link we never made).
    NotFound,
    /// Not GET, HEAD or POST.
    WrongMethod,
    /// A submission that is not the page's form; says what is wrong.
    BadForm(&'static str),
    /// A link with a signature that is not ours (altered or forged).
    NotRecognized,
    /// The survey no longer takes answers (the link expired, or the survey is gone).
    Closed,
    /// The answer could not be recorded now (the table or the queue failed): try again.
    Unavailable,
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl ErrorCode for PageError {
    fn code(&self) -> &'static str {
        match self {
            PageError::NotFound => "not_found",
            PageError::WrongMethod => "method_not_allowed",
            PageError::BadForm(_) => "malformed_request",
            PageError::NotRecognized => "link_not_recognized",
            PageError::Closed => "survey_closed",
            PageError::Unavailable => "unavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::NotRecognized => StatusCode::FORBIDDEN,
            PageError::Closed => StatusCode::GONE,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            PageError::NotFound => "no such page".into(),
            PageError::WrongMethod => "the page takes GET and POST".into(),
            PageError::BadForm(problem) => (*problem).into(),
            PageError::NotRecognized => "this link was not made by us".into(),
            PageError::Closed => "this survey no longer takes answers".into(),
            PageError::Unavailable => "the answer could not be recorded now; try again in a minute".into(),
        }
    }

    fn allowed_methods(&self) -> Option<&str> {
        matches!(self, PageError::WrongMethod).then_some("GET, HEAD, POST")
    }
}

/// Is `form` an id `form_id` makes (a ULID: 26 Crockford base32 digits)?
fn form_id_ok(form: &str) -> bool {
    form.len() == 26 && form.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A new form's id (unique per page shown).
pub fn form_id() -> String {
    ulid::Ulid::new().to_string()
}

/// What a request asks, from its method, path, media type and body.
pub fn parse_request(
    method: &Method,
    path: &str,
    media_type: Option<&str>,
    body: &[u8],
) -> Result<PageRequest, PageError> {
    let token = path
        .strip_prefix(PATH_PREFIX)
        .filter(|t| !t.is_empty() && !t.contains('/'))
        .ok_or(PageError::NotFound)?
        .to_owned();
    if method == Method::GET || method == Method::HEAD {
        return Ok(PageRequest::Show { token });
    }
    if method != Method::POST {
        return Err(PageError::WrongMethod);
    }
    if media_type != Some("application/x-www-form-urlencoded") {
        return Err(PageError::BadForm(
            "the form is sent as application/x-www-form-urlencoded",
        ));
    }
    let (mut rating, mut remark, mut form) = (None, None, None);
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "rating" => &mut rating,
            "remark" => &mut remark,
            "form" => &mut form,
            _ => return Err(PageError::BadForm("the form has a field the page does not send")),
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(PageError::BadForm("a field of the form is repeated"));
        }
    }
    let rating = match rating.as_deref() {
        Some(r @ ("1" | "2" | "3" | "4" | "5")) => r.as_bytes()[0] - b'0',
        Some(_) => return Err(PageError::BadForm("rating must be 1, 2, 3, 4 or 5")),
        None => return Err(PageError::BadForm("the form has no rating")),
    };
    let form = form
        .filter(|f| form_id_ok(f))
        .ok_or(PageError::BadForm("the form has no valid form id"))?;
    let remark = remark.filter(|r| !r.trim().is_empty());
    if remark.as_ref().is_some_and(|r| r.chars().count() > MAX_REMARK_CHARS) {
        return Err(PageError::BadForm("remark is longer than 2000 characters"));
    }
    Ok(PageRequest::Answer {
        token,
        answer: AnswerForm { rating, remark, form },
    })
}

/// The survey a link names, if one of `keys` signed it and it has not expired: a malformed
/// link is no page of ours, a forged one is refused, an expired one is closed.
pub fn check_token(token: &str, keys: &[Vec<u8>], now: DateTime<Utc>) -> Result<FeedbackToken, PageError> {
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    FeedbackToken::verify(token, &keys, now).map_err(|error| match error {
        TokenError::Malformed => PageError::NotFound,
        TokenError::Forged => PageError::NotRecognized,
        TokenError::Expired => PageError::Closed,
    })
}

/// The page's languages: those the rating words know (English the fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Es,
    Fr,
    De,
    Pt,
    It,
}

impl Language {
    /// The language of a locale (`es-MX`, `pt_BR`, `fr`), if the page has it.
    pub fn of_locale(locale: &str) -> Option<Self> {
        let language = locale.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        Some(match language.as_str() {
            "en" => Language::En,
            "es" => Language::Es,
            "fr" => Language::Fr,
            "de" => Language::De,
            "pt" => Language::Pt,
            "it" => Language::It,
            _ => return None,
        })
    }

    /// The survey's locale where known, else the first of the browser's `Accept-Language`
    /// the page has, else English.
    pub fn choose(locale: Option<&str>, accept_language: Option<&str>) -> Self {
        locale
            .and_then(Self::of_locale)
            .or_else(|| {
                accept_language?
                    .split(',')
                    .filter_map(|range| Self::of_locale(range.split(';').next()?))
                    .next()
            })
            .unwrap_or(Language::En)
    }

    fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
            Language::Fr => "fr",
            Language::De => "de",
            Language::Pt => "pt",
            Language::It => "it",
        }
    }

    fn words(self) -> &'static Words {
        match self {
            Language::En => &EN,
            Language::Es => &ES,
            Language::Fr => &FR,
            Language::De => &DE,
            Language::Pt => &PT,
            Language::It => &IT,
        }
    }
}

/// The page's text in one language.
struct Words {
    question: &'static str,
    scale: &'static str,
    /// `{n}` is the rating (a button's label for screen readers, the rating recorded).
    of_five: &'static str,
    thanks: &'static str,
    your_rating: &'static str,
    remark: &'static str,
    send: &'static str,
    change: &'static str,
    closed: &'static str,
    not_recognized: &'static str,
    unavailable: &'static str,
    not_found: &'static str,
}

const EN: Words = Words {
    question: "How did we do?",
    scale: "1 = poor, 5 = great",
    of_five: "{n} of 5",
    thanks: "Thank you!",
    your_rating: "Your rating:",
    remark: "Anything you would like to add? (optional)",
    send: "Send",
    change: "You can change your rating from the same link until it expires.",
    closed: "This survey is closed. Thank you.",
    not_recognized: "We do not recognize this link.",
    unavailable: "We could not record your answer just now. Please try again in a minute.",
    not_found: "There is no page here.",
};
const ES: Words = Words {
    question: "¿Qué le pareció nuestra atención?",
    scale: "1 = mala, 5 = excelente",
    of_five: "{n} de 5",
    thanks: "¡Gracias!",
    your_rating: "Su valoración:",
    remark: "¿Algo que quiera añadir? (opcional)",
    send: "Enviar",
    change: "Puede cambiar su valoración desde el mismo enlace hasta que caduque.",
    closed: "Esta encuesta está cerrada. Gracias.",
    not_recognized: "No reconocemos este enlace.",
    unavailable: "No hemos podido registrar su respuesta. Inténtelo de nuevo en un minuto.",
    not_found: "Aquí no hay ninguna página.",
};
const FR: Words = Words {
    question: "Comment avons-nous répondu à votre demande ?",
    scale: "1 = mauvais, 5 = excellent",
    of_five: "{n} sur 5",
    thanks: "Merci !",
    your_rating: "Votre note :",
    remark: "Souhaitez-vous ajouter quelque chose ? (facultatif)",
    send: "Envoyer",
    change: "Vous pouvez modifier votre note depuis le même lien jusqu’à son expiration.",
    closed: "Ce questionnaire est clos. Merci.",
    not_recognized: "Nous ne reconnaissons pas ce lien.",
    unavailable: "Nous n’avons pas pu enregistrer votre réponse. Réessayez dans une minute.",
    not_found: "Il n’y a pas de page ici.",
};
const DE: Words = Words {
    question: "Wie zufrieden waren Sie mit uns?",
    scale: "1 = schlecht, 5 = sehr gut",
    of_five: "{n} von 5",
    thanks: "Vielen Dank!",
    your_rating: "Ihre Bewertung:",
    remark: "Möchten Sie noch etwas hinzufügen? (optional)",
    send: "Senden",
    change: "Sie können Ihre Bewertung über denselben Link ändern, bis er abläuft.",
    closed: "Diese Umfrage ist geschlossen. Vielen Dank.",
    not_recognized: "Diesen Link kennen wir nicht.",
    unavailable: "Ihre Antwort konnte gerade nicht gespeichert werden. Bitte versuchen Sie es in einer Minute erneut.",
    not_found: "Hier gibt es keine Seite.",
};
const PT: Words = Words {
    question: "Como avalia o nosso atendimento?",
    scale: "1 = mau, 5 = ótimo",
    of_five: "{n} de 5",
    thanks: "Obrigado!",
    your_rating: "A sua avaliação:",
    remark: "Quer acrescentar alguma coisa? (opcional)",
    send: "Enviar",
    change: "Pode alterar a sua avaliação no mesmo link até este expirar.",
    closed: "Este inquérito está encerrado. Obrigado.",
    not_recognized: "Não reconhecemos este link.",
    unavailable: "Não foi possível registar a sua resposta. Tente novamente daqui a um minuto.",
    not_found: "Não há nenhuma página aqui.",
};
const IT: Words = Words {
    question: "Come valuta il nostro servizio?",
    scale: "1 = scarso, 5 = ottimo",
    of_five: "{n} su 5",
    thanks: "Grazie!",
    your_rating: "La sua valutazione:",
    remark: "Vuole aggiungere qualcosa? (facoltativo)",
    send: "Invia",
    change: "Può modificare la valutazione dallo stesso link fino alla sua scadenza.",
    closed: "Questo sondaggio è chiuso. Grazie.",
    not_recognized: "Non riconosciamo questo link.",
    unavailable: "Non è stato possibile registrare la risposta. Riprovi tra un minuto.",
    not_found: "Qui non c’è nessuna pagina.",
};

/// A page the function answers with 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Five buttons, each submitting its rating.
    Question { language: Language, form: String },
    /// The rating recorded; the remark box unless a remark came with it.
    Thanks {
        language: Language,
        rating: u8,
        remarked: bool,
        form: String,
    },
}

/// The page's one style sheet (WCAG AA contrast, visible focus, large targets, fits 320 px).
const STYLE: &str = "body{font:1.125rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;\
max-width:32rem;margin:2rem auto;padding:0 1rem}h1{font-size:1.5rem}\
.scale{display:flex;gap:.5rem;flex-wrap:wrap}\
button{font:inherit;min-width:3rem;min-height:3rem;border:2px solid #1f4e8c;border-radius:.5rem;\
background:#1f4e8c;color:#fff;cursor:pointer}button:focus-visible,textarea:focus-visible\
{outline:3px solid #b35c00;outline-offset:2px}fieldset{border:0;padding:0;margin:0}\
legend{font-size:1.5rem;font-weight:700;margin-bottom:.5rem}label{display:block;margin:1rem 0 .25rem}\
textarea{font:inherit;width:100%;box-sizing:border-box;border:2px solid #555;border-radius:.25rem}\
form button[type=submit]:not([name]){margin-top:.75rem;padding:0 1.25rem}p.note{color:#4a4a4a}";

/// The Content-Security-Policy every answer carries: nothing but the page's own style (by its
/// hash, computed once) and its own form; no script, no frame, no other origin.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let hash = encode(Encoding::Base64, &sha256(STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
    });
    &POLICY
}

fn document(language: Language, title: &str, main: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>{main}</main></body></html>",
        lang = language.code()
    )
}

/// A page's HTML. Every value in it is the page's own text, a rating or a form id it checked:
/// nothing the customer typed is ever shown.
pub fn render(page: &Page) -> String {
    match page {
        Page::Question { language, form } => {
            let words = language.words();
            let buttons: String = (1..=5)
                .map(|n| {
                    format!(
                        "<button type=\"submit\" name=\"rating\" value=\"{n}\" aria-label=\"{}\">{n}</button>",
                        words.of_five.replace("{n}", &n.to_string())
                    )
                })
                .collect();
            let main = format!(
                "<form method=\"post\"><input type=\"hidden\" name=\"form\" value=\"{form}\">\
<fieldset aria-describedby=\"scale\"><legend><h1>{q}</h1></legend><p id=\"scale\">{scale}</p>\
<div class=\"scale\">{buttons}</div></fieldset></form>",
                q = words.question,
                scale = words.scale,
            );
            document(*language, words.question, &main)
        }
        Page::Thanks {
            language,
            rating,
            remarked,
            form,
        } => {
            let words = language.words();
            let rated = words.of_five.replace("{n}", &rating.to_string());
            let remark_box = if *remarked {
                String::new()
            } else {
                format!(
                    "<form method=\"post\"><input type=\"hidden\" name=\"form\" value=\"{form}\">\
<input type=\"hidden\" name=\"rating\" value=\"{rating}\"><label for=\"remark\">{label}</label>\
<textarea id=\"remark\" name=\"remark\" rows=\"5\" maxlength=\"{MAX_REMARK_CHARS}\"></textarea>\
<button type=\"submit\">{send}</button></form>",
                    label = words.remark,
                    send = words.send,
                )
            };
            let main = format!(
                "<h1>{thanks}</h1><p>{your} {rated}</p>{remark_box}<p class=\"note\">{change}</p>",
                thanks = words.thanks,
                your = words.your_rating,
                change = words.change,
            );
            document(*language, words.thanks, &main)
        }
    }
}

/// An error as a page, in `language`.
pub fn render_error(error: &PageError, language: Language) -> String {
    let words = language.words();
    let text = match error {
        PageError::NotRecognized => words.not_recognized,
        PageError::Closed => words.closed,
        PageError::Unavailable => words.unavailable,
        PageError::NotFound | PageError::WrongMethod | PageError::BadForm(_) => words.not_found,
    };
    document(language, text, &format!("<h1>{text}</h1>"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    const KEY: &[u8] = b"throughline-test-feedback-key";
    const FORM: &str = "01JEXAMPLE0000000000000000";

    fn post(body: &str) -> Result<PageRequest, PageError> {
        parse_request(
            &Method::POST,
            "/feedback/sv_1.2.x",
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )
    }

    #[test]
    fn a_get_shows_and_a_post_answers() {
        assert_eq!(
            parse_request(&Method::GET, "/feedback/sv_1.2.x", None, b""),
            Ok(PageRequest::Show {
                token: "sv_1.2.x".into()
            })
        );
        assert_eq!(
            post(&format!("form={FORM}&rating=4&remark=Quick+%26+kind")),
            Ok(PageRequest::Answer {
                token: "sv_1.2.x".into(),
                answer: AnswerForm {
                    rating: 4,
                    remark: Some("Quick & kind".into()),
                    form: FORM.into()
                }
            })
        );
        // An empty remark box is no remark.
        let Ok(PageRequest::Answer { answer, .. }) = post(&format!("form={FORM}&rating=5&remark=+++")) else {
            panic!("a rating with a blank remark is an answer");
        };
        assert_eq!(answer.remark, None);
    }

    #[test]
    fn other_paths_methods_and_forms_are_refused_saying_why() {
        for path in ["/", "/feedback/", "/feedback/a/b", "/other/sv_1.2.x"] {
            assert_eq!(
                parse_request(&Method::GET, path, None, b""),
                Err(PageError::NotFound),
                "{path}"
            );
        }
        assert_eq!(
            parse_request(&Method::DELETE, "/feedback/t", None, b""),
            Err(PageError::WrongMethod)
        );
        assert_eq!(PageError::WrongMethod.allowed_methods(), Some("GET, HEAD, POST"));
        let too_long = format!("form={FORM}&rating=3&remark={}", "x".repeat(MAX_REMARK_CHARS + 1));
        for (body, problem) in [
            ("rating=4".to_owned(), "form id"),
            (format!("form={FORM}"), "no rating"),
            (format!("form={FORM}&rating=6"), "1, 2, 3, 4 or 5"),
            (format!("form={FORM}&rating=04"), "1, 2, 3, 4 or 5"),
            (format!("form={FORM}&rating=4&rating=5"), "repeated"),
            (format!("form={FORM}&rating=4&email=ada"), "field"),
            ("form=<script>&rating=4".to_owned(), "form id"),
            (too_long, "2000"),
        ] {
            match post(&body) {
                Err(PageError::BadForm(said)) => assert!(said.contains(problem), "{body}: {said}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_request(&Method::POST, "/feedback/t", Some("application/json"), b"{}"),
            Err(PageError::BadForm(_))
        ));
        assert_eq!(PageError::BadForm("x").status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn links_are_ours_and_current_or_refused() {
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let token = FeedbackToken {
            survey: "sv_0a1b".into(),
            expires_at: now + TimeDelta::hours(24),
        };
        let signed = token.sign(KEY);
        let keys = vec![b"another-key-0123456789".to_vec(), KEY.to_vec()];
        assert_eq!(check_token(&signed, &keys, now), Ok(token));
        let forged = check_token(&signed, &keys[..1], now);
        assert_eq!(forged, Err(PageError::NotRecognized));
        assert_eq!(forged.unwrap_err().status(), StatusCode::FORBIDDEN);
        let expired = check_token(&signed, &keys, now + TimeDelta::hours(25));
        assert_eq!(expired.unwrap_err().status(), StatusCode::GONE);
        assert_eq!(check_token("ada@example.com", &keys, now), Err(PageError::NotFound));
    }

    #[test]
    fn the_language_is_the_surveys_then_the_browsers_then_english() {
        assert_eq!(Language::choose(Some("es-MX"), Some("de-DE,de")), Language::Es);
        assert_eq!(Language::choose(Some("ja-JP"), Some("ja, pt-BR;q=0.8")), Language::Pt);
        assert_eq!(Language::choose(None, Some("fr-CH, fr;q=0.9")), Language::Fr);
        assert_eq!(Language::choose(None, None), Language::En);
        assert_eq!(Language::choose(Some(""), Some("*")), Language::En);
    }

    #[test]
    fn the_question_has_five_labelled_buttons_and_the_thanks_a_remark_box() {
        let question = render(&Page::Question {
            language: Language::Fr,
            form: FORM.into(),
        });
        assert!(question.starts_with("<!doctype html><html lang=\"fr\">"));
        for n in 1..=5 {
            assert!(
                question.contains(&format!(
                    "name=\"rating\" value=\"{n}\" aria-label=\"{n} sur 5\">{n}</button>"
                )),
                "{question}"
            );
        }
        assert!(question.contains(&format!("name=\"form\" value=\"{FORM}\"")));
        assert!(!question.contains("<script"));
        let thanks = render(&Page::Thanks {
            language: Language::En,
            rating: 4,
            remarked: false,
            form: FORM.into(),
        });
        assert!(thanks.contains("Your rating: 4 of 5"), "{thanks}");
        assert!(thanks.contains("<label for=\"remark\">"));
        assert!(thanks.contains("<input type=\"hidden\" name=\"rating\" value=\"4\">"));
        let done = render(&Page::Thanks {
            language: Language::En,
            rating: 4,
            remarked: true,
            form: FORM.into(),
        });
        assert!(!done.contains("<textarea"), "a remark is taken once per form");
        let closed = render_error(&PageError::Closed, Language::De);
        assert!(closed.contains("Diese Umfrage ist geschlossen"), "{closed}");
    }

    #[test]
    fn the_policy_allows_the_pages_style_and_nothing_else() {
        let policy = content_security_policy();
        let hash = encode(Encoding::Base64, &sha256(STYLE.as_bytes()));
        assert!(policy.contains(&format!("style-src 'sha256-{hash}'")), "{policy}");
        assert!(policy.starts_with("default-src 'none'"));
        assert!(!policy.contains("script-src"), "no script at all");
        // The style the pages carry is the one hashed.
        let page = render(&Page::Question {
            language: Language::En,
            form: FORM.into(),
        });
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
    }

    proptest::proptest! {
        /// No request panics the parser, and an answer it takes is always a rating of 1–5 with
        /// a remark within the limit.
        #[test]
        fn arbitrary_forms_never_panic(body in "\\PC{0,300}", path in "/feedback/\\PC{0,40}") {
            let parsed = parse_request(&Method::POST, &path, Some("application/x-www-form-urlencoded"), body.as_bytes());
            if let Ok(PageRequest::Answer { answer, .. }) = parsed {
                proptest::prop_assert!((1..=5).contains(&answer.rating));
                proptest::prop_assert!(answer.remark.is_none_or(|r| r.chars().count() <= MAX_REMARK_CHARS));
            }
        }
    }
}
