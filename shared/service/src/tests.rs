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

/// A generated conversation: at each minute (from 08:00) a customer message or an agent reply
/// on one of three channels.
fn generated(steps: &std::collections::BTreeMap<u32, (bool, usize)>) -> Vec<Interaction> {
    let channels = [Channel::Sms, Channel::Email, Channel::Whatsapp];
    steps
        .iter()
        .map(|(minute, (inbound, channel))| {
            let id = format!("m{minute}");
            let (hour, minute) = (8 + minute / 60, minute % 60);
            if *inbound {
                customer(channels[*channel], &id, hour, minute)
            } else {
                agent(channels[*channel], &id, hour, minute)
            }
        })
        .collect()
}

/// The lifecycle of interactions taken in one by one, in the order given.
fn folded(interactions: &[Interaction]) -> (Lifecycle, Vec<Observation>) {
    let mut lifecycle = Lifecycle::default();
    let observed = interactions.iter().map(|i| lifecycle.observe(i)).collect();
    (lifecycle, observed)
}

#[test]
fn a_lifecycle_goes_open_pending_open_and_counts_each_answer_once() {
    let (lifecycle, observed) = folded(&[
        customer(Channel::Email, "e1", 9, 0),
        customer(Channel::Sms, "s1", 9, 10),
        agent(Channel::Sms, "a1", 9, 30),
    ]);
    assert_eq!(lifecycle.status, ConversationStatus::Pending);
    assert_eq!(lifecycle.channel, Some(Channel::Email), "where it opened");
    assert_eq!(
        observed[2].answered,
        Some(Answer {
            channel: Channel::Email,
            waited: minutes(30),
            first: true
        })
    );
    let mut again = lifecycle.clone();
    let next = again.observe(&customer(Channel::Whatsapp, "w1", 10, 0));
    assert!(next.counts_nothing() && next.conversation_channel == Some(Channel::Email));
    assert_eq!(again.status, ConversationStatus::Open);
    assert_eq!(again.waiting_since, Some(sample_day_at(10, 0)));
    let answer = again.observe(&agent(Channel::Whatsapp, "a2", 10, 5)).answered.unwrap();
    assert!(!answer.first && answer.waited == minutes(5) && answer.channel == Channel::Whatsapp);
    assert_eq!(again.first_response_at, Some(sample_day_at(9, 30)));
}

#[test]
fn a_redelivered_or_late_interaction_changes_nothing() {
    let (mut lifecycle, _) = folded(&[customer(Channel::Sms, "s1", 9, 0), agent(Channel::Sms, "a1", 9, 30)]);
    let settled = lifecycle.clone();
    assert!(lifecycle.observe(&agent(Channel::Sms, "a1", 9, 30)).counts_nothing());
    assert!(lifecycle.observe(&customer(Channel::Sms, "s1", 9, 0)).counts_nothing());
    // Written before the reply, delivered after it: the reply answered it.
    lifecycle.observe(&customer(Channel::Sms, "s0", 9, 20));
    assert_eq!(lifecycle, settled);
    // Written before the first message: only the first message's time moves.
    lifecycle.observe(&customer(Channel::Sms, "s-1", 8, 50));
    assert_eq!(lifecycle.first_customer_at, Some(sample_day_at(8, 50)));
    assert_eq!(lifecycle.status, ConversationStatus::Pending);
}

#[test]
fn a_customer_message_after_the_resolution_reopens_it_and_one_before_does_not() {
    let (mut lifecycle, _) = folded(&[customer(Channel::Sms, "s1", 9, 0), agent(Channel::Sms, "a1", 9, 30)]);
    let resolution = lifecycle.resolve(sample_day_at(10, 0), sample_day_at(9, 0)).unwrap();
    assert_eq!(resolution.after, minutes(60));
    assert_eq!(
        lifecycle.resolve(sample_day_at(10, 1), sample_day_at(9, 0)),
        Err(LifecycleRefusal::AlreadyResolved)
    );
    assert!(!lifecycle.observe(&customer(Channel::Sms, "late", 9, 45)).reopened);
    assert_eq!(lifecycle.status, ConversationStatus::Resolved);
    assert!(lifecycle.observe(&customer(Channel::Sms, "s2", 11, 0)).reopened);
    assert_eq!(lifecycle.status, ConversationStatus::Open);
    assert_eq!(lifecycle.reopens, 1);
    assert_eq!(lifecycle.waiting_since, Some(sample_day_at(11, 0)));
    // The same message again: still one reopen.
    assert!(!lifecycle.observe(&customer(Channel::Sms, "s2", 11, 0)).reopened);
    assert_eq!(lifecycle.reopens, 1);
    assert_eq!(lifecycle.reopen(), Err(LifecycleRefusal::NotResolved));
}

#[test]
fn an_agent_reopen_is_open_with_nobody_waiting_until_the_customer_writes() {
    let (mut lifecycle, _) = folded(&[customer(Channel::Sms, "s1", 9, 0)]);
    lifecycle.resolve(sample_day_at(9, 5), sample_day_at(9, 0)).unwrap();
    lifecycle.reopen().unwrap();
    assert_eq!(lifecycle.status, ConversationStatus::Open);
    assert_eq!(lifecycle.waiting_since, None);
    let reply = lifecycle.observe(&agent(Channel::Sms, "a1", 9, 10));
    assert!(reply.reply && reply.answered.is_none(), "nothing was owed");
    assert_eq!(lifecycle.status, ConversationStatus::Pending);
}

#[test]
fn automated_mail_and_surveys_leave_the_lifecycle_alone() {
    let mut bounce = customer(Channel::Email, "b1", 9, 0);
    bounce.kind = InteractionKind::Automated;
    let mut survey = agent(Channel::Sms, "q1", 9, 5);
    survey.attributes.insert("survey".into(), "sv_1".into());
    let (lifecycle, observed) = folded(&[bounce, survey]);
    assert_eq!(lifecycle, Lifecycle::default());
    assert!(observed.iter().all(|o| *o == Observation::default()), "{observed:?}");
}

#[test]
fn a_lifecycle_written_before_lifecycles_existed_reads_as_open() {
    let lifecycle: Lifecycle = serde_json::from_str("{}").unwrap();
    assert_eq!(lifecycle.status, ConversationStatus::Open);
    assert_eq!(
        serde_json::to_string(&Lifecycle::default()).unwrap(),
        r#"{"status":"open"}"#
    );
}

proptest::proptest! {
    /// Taken in one by one in time order, a lifecycle has the times `conversation_times` gives
    /// for the whole conversation (distinct minutes: ties are taken in arrival order), and
    /// taking any of them in again changes nothing.
    #[test]
    fn folding_in_time_order_is_conversation_times(
        steps in proptest::collection::btree_map(0u32..600, (proptest::bool::ANY, 0usize..3), 1..20),
        again in 0usize..20,
    ) {
        let interactions = generated(&steps);
        let times = conversation_times(&interactions);
        let (mut lifecycle, observed) = folded(&interactions);
        let answers: Vec<(Channel, TimeDelta)> =
            observed.iter().filter_map(|o| o.answered).map(|a| (a.channel, a.waited)).collect();
        proptest::prop_assert_eq!(&answers, &times.reply_times);
        proptest::prop_assert_eq!(
            observed.iter().find_map(|o| o.answered.filter(|a| a.first)).map(|a| a.waited),
            times.first_response
        );
        proptest::prop_assert_eq!(lifecycle.replies, times.replies);
        proptest::prop_assert_eq!(
            lifecycle.average_reply().map(|t| t.num_seconds()),
            times.average_reply().map(|t| t.num_seconds())
        );
        proptest::prop_assert_eq!(lifecycle.waiting_since, times.waiting_since);
        let expected = if times.waiting_since.is_some() || times.replies == 0 {
            ConversationStatus::Open
        } else {
            ConversationStatus::Pending
        };
        proptest::prop_assert_eq!(lifecycle.status, expected);
        let before = lifecycle.clone();
        proptest::prop_assert!(lifecycle.observe(&interactions[again % interactions.len()]).counts_nothing());
        proptest::prop_assert_eq!(lifecycle, before);
    }
}

mod rollups {
    use super::*;
    use crate::hours::BusinessHours;
    use crate::rollup::*;

    fn rolled_up(interactions: &[Interaction]) -> DayAdds {
        let mut lifecycle = Lifecycle::default();
        let mut adds = DayAdds::default();
        for interaction in interactions {
            let observed = lifecycle.observe(interaction);
            adds.merge(interaction_adds(interaction, &observed, &BusinessHours::always()));
        }
        adds
    }

    fn cells(adds: &DayAdds) -> Vec<(&str, &Adds)> {
        adds.cells.iter().map(|((_, sk), a)| (sk.as_str(), a)).collect()
    }

    #[test]
    fn a_conversation_counts_once_where_it_opened_with_each_wait_where_it_was_written() {
        let adds = rolled_up(&[
            customer(Channel::Email, "e1", 9, 0),
            customer(Channel::Sms, "s1", 9, 10),
            agent(Channel::Sms, "a1", 9, 30),
            customer(Channel::Whatsapp, "w1", 10, 0),
            agent(Channel::Email, "a2", 10, 5),
        ]);
        let day = sample_day_at(9, 0).date_naive();
        let cell = |name: &str| adds.cells.get(&(day, name.to_owned())).cloned().unwrap_or_default();
        let email = cell("ch#email");
        assert_eq!(email.get("opened"), Some(&1));
        assert_eq!(email.get("inbound"), Some(&1));
        assert_eq!(email.get("outbound"), Some(&1));
        assert_eq!(
            email.get(&format!("frt_{}", bucket(minutes(30)))),
            Some(&1),
            "first response where it opened"
        );
        assert_eq!(
            email.get(&format!("reply_{}", bucket(minutes(30)))),
            Some(&1),
            "she wrote by email first"
        );
        let sms = cell("ch#sms");
        assert_eq!(
            (sms.get("opened"), sms.get("inbound"), sms.get("outbound")),
            (None, Some(&1), Some(&1))
        );
        assert_eq!(
            cell("ch#whatsapp").get(&format!("reply_{}", bucket(minutes(5)))),
            Some(&1)
        );
        let summary = summarize(cells(&adds), &ReportFilter::default());
        assert_eq!(summary.conversations_opened, Some(1));
        assert_eq!(
            (summary.inbound_messages, summary.outbound_messages),
            (Some(3), Some(2))
        );
        assert_eq!(summary.first_response.count, 1);
        assert_eq!(summary.reply.unwrap().count, 2);
        let on_sms = summarize(
            cells(&adds),
            &ReportFilter {
                channel: Some(Channel::Sms),
                ..ReportFilter::default()
            },
        );
        assert_eq!((on_sms.conversations_opened, on_sms.first_response.count), (Some(0), 0));
    }

    #[test]
    fn resolutions_count_by_reason_and_assignee_and_keep_suggestions_apart() {
        let hours = BusinessHours::always();
        let mut adds = DayAdds::default();
        for (n, (assignee, confirmed, suggested)) in [
            (Some("agent-ada"), vec!["billing/refund"], vec!["delivery/late"]),
            (Some("agent-ada"), vec!["billing/refund"], vec![]),
            (None, vec![], vec!["billing/refund"]),
        ]
        .into_iter()
        .enumerate()
        {
            adds.merge(resolution_adds(
                &Resolved {
                    at: sample_day_at(12, 0),
                    opened_at: sample_day_at(11, 0) - minutes(30 * n as i64),
                    channel: Channel::Sms,
                    assignee: assignee.map(str::to_owned),
                    confirmed: confirmed.into_iter().map(str::to_owned).collect(),
                    suggested: suggested.into_iter().map(str::to_owned).collect(),
                    first_response: Some((sample_day_at(11, 0), sample_day_at(11, 10))),
                },
                &hours,
            ));
        }
        let all = summarize(cells(&adds), &ReportFilter::default());
        assert_eq!(all.conversations_resolved, 3, "each once, whatever its reasons");
        assert_eq!(all.resolution.count, 3);
        assert_eq!(
            all.reasons,
            [
                ReasonCount {
                    code: "billing/refund".into(),
                    confirmed: 2,
                    suggested: 1
                },
                ReasonCount {
                    code: "delivery/late".into(),
                    confirmed: 0,
                    suggested: 1
                },
            ]
        );
        let refunds = summarize(
            cells(&adds),
            &ReportFilter {
                reason: Some("billing/refund".into()),
                ..ReportFilter::default()
            },
        );
        assert_eq!(refunds.conversations_resolved, 2, "confirmed only");
        assert_eq!(refunds.conversations_opened, None, "not kept per reason");
        assert_eq!(refunds.first_response.count, 2, "of the conversations resolved");
        let ada = summarize(
            cells(&adds),
            &ReportFilter {
                assignee: Some("agent-ada".into()),
                ..ReportFilter::default()
            },
        );
        assert_eq!(ada.conversations_resolved, 2);
    }

    #[test]
    fn csat_counts_the_latest_rating_of_each_survey_by_channel_reason_and_assignee() {
        let surveyed = |assignee: &str, reasons: &[&str]| Surveyed {
            resolved_at: sample_day_at(12, 0),
            channel: Channel::Whatsapp,
            assignee: Some(assignee.to_owned()),
            confirmed: reasons.iter().map(|r| (*r).to_owned()).collect(),
        };
        let late = surveyed("agent-ada", &["delivery/late"]);
        let refund = surveyed("agent-bo", &["billing/refund"]);
        let mut adds = DayAdds::default();
        for (surveyed, event) in [
            (&late, SurveyEvent::Sent),
            (
                &late,
                SurveyEvent::Rated {
                    rating: 2,
                    replaces: None,
                },
            ),
            // She changed her mind: 2 → 5.
            (
                &late,
                SurveyEvent::Rated {
                    rating: 5,
                    replaces: Some(2),
                },
            ),
            (&refund, SurveyEvent::Sent),
            (
                &refund,
                SurveyEvent::Rated {
                    rating: 3,
                    replaces: None,
                },
            ),
            (&refund, SurveyEvent::Sent),
        ] {
            adds.merge(survey_adds(surveyed, event));
        }
        let all = summarize(cells(&adds), &ReportFilter::default()).csat;
        assert_eq!((all.surveys, all.ratings), (3, [0, 0, 1, 0, 1]));
        assert_eq!(all.responses(), 2);
        assert_eq!(all.average(), Some(4.0));
        assert_eq!(all.satisfied(), Some(0.5), "ratings of 4 or 5");
        assert_eq!(all.response_rate(), Some(2.0 / 3.0));
        let late_only = summarize(
            cells(&adds),
            &ReportFilter {
                reason: Some("delivery/late".into()),
                ..ReportFilter::default()
            },
        )
        .csat;
        assert_eq!((late_only.surveys, late_only.ratings), (1, [0, 0, 0, 0, 1]));
        let bo = summarize(
            cells(&adds),
            &ReportFilter {
                assignee: Some("agent-bo".into()),
                channel: Some(Channel::Whatsapp),
                ..ReportFilter::default()
            },
        )
        .csat;
        assert_eq!((bo.surveys, bo.average()), (2, Some(3.0)));
        assert_eq!(Csat::default().average(), None);
        assert_eq!(Csat::default().response_rate(), None);
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let mut histogram = Histogram::default();
        histogram.0.insert(bucket(TimeDelta::seconds(90)), 10); // (60 s, 120 s]
        assert_eq!(histogram.quantile(0.5), Some(TimeDelta::seconds(90)));
        assert_eq!(histogram.quantile(0.9), Some(TimeDelta::seconds(114)));
        histogram.0.insert(BUCKET_BOUNDS.len(), 10); // more than a week
        assert_eq!(
            histogram.quantile(0.9),
            Some(TimeDelta::seconds(604_800)),
            "the open bucket's lower bound"
        );
        assert_eq!(Histogram::default().quantile(0.5), None);
        assert_eq!(bucket(TimeDelta::seconds(60)), 0, "a bound closes its bucket");
        assert_eq!(bucket(TimeDelta::milliseconds(60_001)), 1);
    }

    #[test]
    fn business_hours_are_kept_beside_wall_time() {
        let hours = BusinessHours::from_json(r#"{"time_zone": "UTC", "weekly": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]}}"#).unwrap();
        // Written at 08:00, answered at 09:30 (the sample day is a weekday): 90 minutes of wall
        // time, 30 of business hours.
        let mut lifecycle = Lifecycle::default();
        let mut adds = DayAdds::default();
        for interaction in [customer(Channel::Sms, "s1", 8, 0), agent(Channel::Sms, "a1", 9, 30)] {
            let observed = lifecycle.observe(&interaction);
            adds.merge(interaction_adds(&interaction, &observed, &hours));
        }
        let wall = summarize(cells(&adds), &ReportFilter::default());
        let business = summarize(
            cells(&adds),
            &ReportFilter {
                business_hours: true,
                ..ReportFilter::default()
            },
        );
        assert_eq!(bucket(wall.first_response.median.unwrap()), bucket(minutes(90)));
        assert_eq!(bucket(business.first_response.median.unwrap()), bucket(minutes(30)));
    }

    proptest::proptest! {
        /// Rollups are sums: any order of the same additions gives the same cells, and a
        /// conversation's rollup holds as many waits as `conversation_times` has.
        #[test]
        fn any_order_of_the_same_events_gives_the_same_rollups(
            steps in proptest::collection::btree_map(0u32..600, (proptest::bool::ANY, 0usize..3), 1..20),
            seed in proptest::collection::vec(0usize..1000, 20),
        ) {
            let interactions = generated(&steps);
            let mut lifecycle = Lifecycle::default();
            let parts: Vec<DayAdds> = interactions
                .iter()
                .map(|i| {
                    let observed = lifecycle.observe(i);
                    interaction_adds(i, &observed, &BusinessHours::always())
                })
                .collect();
            let mut in_order = DayAdds::default();
            for part in parts.clone() {
                in_order.merge(part);
            }
            let mut shuffled = parts;
            for (i, s) in seed.iter().enumerate().take(shuffled.len()) {
                let j = s % shuffled.len();
                shuffled.swap(i, j);
            }
            let mut any_order = DayAdds::default();
            for part in shuffled {
                any_order.merge(part);
            }
            proptest::prop_assert_eq!(&in_order, &any_order);
            let summary = summarize(cells(&in_order), &ReportFilter::default());
            let times = conversation_times(&interactions);
            proptest::prop_assert_eq!(summary.reply.unwrap().count, times.reply_times.len() as u64);
            proptest::prop_assert_eq!(summary.first_response.count, u64::from(times.first_response.is_some()));
            proptest::prop_assert_eq!(summary.conversations_opened, Some(1));
        }
    }
}
