use super::*;
use throughline_model::{
    AttemptOutcome, Delivery, DeliveryError, Direction, E164, Handle, Interaction, InteractionKind, NewInteraction,
    Provider, ProviderMessageId,
};
use throughline_testkit::sample_day_at;

fn message(channel: Channel, direction: Direction, id: &str, hour: u32, minute: u32) -> Interaction {
    let phone = |n: &str| Handle::Phone {
        number: E164::parse(n).unwrap(),
    };
    Interaction::new(NewInteraction {
        channel,
        provider: Provider::Twilio,
        direction,
        customer: phone("+14155550100"),
        business_endpoint: phone("+14155550199"),
        provider_message_id: ProviderMessageId::parse(id).unwrap(),
        occurred_at: sample_day_at(hour, minute),
        received_at: sample_day_at(hour, minute),
    })
}

fn customer(channel: Channel, id: &str, hour: u32, minute: u32) -> Interaction {
    message(channel, Direction::Inbound, id, hour, minute)
}

fn agent(channel: Channel, id: &str, hour: u32, minute: u32) -> Interaction {
    let mut reply = message(channel, Direction::Outbound, id, hour, minute);
    reply.author = Some("agent-grace".into());
    reply
}

fn minutes(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

#[test]
fn a_cross_channel_conversation_counts_each_wait_on_the_channel_the_customer_wrote_on() {
    let times = conversation_times(&[
        customer(Channel::Email, "e1", 9, 0),
        customer(Channel::Sms, "s1", 9, 10),
        agent(Channel::Sms, "a1", 9, 30),
        customer(Channel::Whatsapp, "w1", 10, 0),
        agent(Channel::Email, "a2", 10, 5),
        agent(Channel::Email, "a3", 10, 6),
    ]);
    assert_eq!(
        times.first_response,
        Some(minutes(30)),
        "from her first message, by email"
    );
    assert_eq!(
        times.reply_times,
        [(Channel::Email, minutes(30)), (Channel::Whatsapp, minutes(5))]
    );
    assert_eq!(times.replies, 3, "the follow-up counts as a reply, not as a wait");
    assert_eq!(times.average_reply(), Some(TimeDelta::seconds(35 * 60 / 2)));
    assert_eq!(times.waiting_since, None);
}

#[test]
fn an_echo_is_an_agent_reply_and_automated_mail_failed_replies_and_surveys_are_not() {
    let echo = message(Channel::Messenger, Direction::Outbound, "echo", 9, 20);
    assert!(is_agent_reply(&echo), "the page's answer in Meta's app");
    let mut automated = customer(Channel::Email, "ooo", 9, 1);
    automated.kind = InteractionKind::Automated;
    let mut bounce_back = agent(Channel::Email, "auto", 9, 2);
    bounce_back.kind = InteractionKind::Automated;
    let mut survey = agent(Channel::Sms, "csat", 9, 3);
    survey.attributes.insert("survey".into(), "sv_1".into());
    let mut failed = agent(Channel::Sms, "failed", 9, 4);
    failed.delivery = Delivery::queued(1, sample_day_at(9, 4)).settled(
        1,
        &AttemptOutcome::Failed(DeliveryError {
            code: "21610".into(),
            reason: "STOP".into(),
        }),
        sample_day_at(9, 4),
    );
    let times = conversation_times(&[
        customer(Channel::Messenger, "m1", 9, 0),
        automated,
        bounce_back,
        survey,
        failed,
        echo,
    ]);
    assert_eq!(times.first_response, Some(minutes(20)));
    assert_eq!(times.replies, 1);
}

#[test]
fn a_customer_still_waiting_has_no_reply_time_yet() {
    let times = conversation_times(&[
        agent(Channel::Sms, "a0", 8, 0),
        customer(Channel::Sms, "s1", 9, 0),
        customer(Channel::Sms, "s2", 9, 5),
    ]);
    assert_eq!(times.first_response, None);
    assert_eq!(
        times.replies, 1,
        "a message the company sent first is a reply, answering no wait"
    );
    assert!(times.reply_times.is_empty());
    assert_eq!(times.waiting_since, Some(sample_day_at(9, 0)));
    assert_eq!(times.average_reply(), None);
}

proptest::proptest! {
    /// Any order of the same interactions gives the same times.
    #[test]
    fn the_order_interactions_come_in_does_not_matter(
        steps in proptest::collection::vec((proptest::bool::ANY, 0u32..59), 1..12),
        seed in proptest::collection::vec(0usize..1000, 12),
    ) {
        let interactions: Vec<Interaction> = steps
            .iter()
            .enumerate()
            .map(|(i, (inbound, minute))| {
                let id = format!("m{i}");
                if *inbound { customer(Channel::Sms, &id, 9, *minute) } else { agent(Channel::Sms, &id, 9, *minute) }
            })
            .collect();
        let mut shuffled = interactions.clone();
        for (i, s) in seed.iter().enumerate().take(shuffled.len()) {
            let j = s % shuffled.len();
            shuffled.swap(i, j);
        }
        proptest::prop_assert_eq!(conversation_times(&interactions), conversation_times(&shuffled));
    }
}
