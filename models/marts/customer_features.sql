with

windows as (

    select * from {{ ref('int_customers__activity_windows') }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

eligible as (

    -- At the cutoff: seen before it and not cancelled before it. Whether the
    -- customer cancels later is the label's business, not the features'.
    select
        windows.*,
        customers.registered_at

    from windows
    inner join customers
        on windows.customer_id = customers.customer_id
    where
        customers.cancelled_at is null
        or customers.cancelled_at >= cast(windows.cutoff_date as timestamp)

),

features as (

    select
        concat(customer_id, '|', cutoff_date) as customer_cutoff_id,
        customer_id,
        cutoff_date,

        ----------  recency and tenure
        datediff(cutoff_date, last_activity_date) as days_since_last_activity,
        greatest(
            datediff(
                cutoff_date,
                coalesce(to_date(registered_at), first_activity_date)
            ),
            0
        ) as tenure_days,

        ----------  frequency and volume
        count_sessions_7d,
        count_sessions_28d,
        count_songs_7d,
        count_songs_28d,
        listening_seconds_7d,
        listening_seconds_28d,
        count_active_days_28d,

        ----------  trend: last 7 days against the weekly mean of the 21 before
        (count_songs_7d + 1.0) / (count_songs_prev_21d / 3.0 + 1.0)
            as songs_7d_vs_prev_21d_ratio,

        ----------  content feedback
        count_thumbs_up_28d,
        count_thumbs_down_28d,
        coalesce(
            count_thumbs_down_28d
            / nullif(count_thumbs_up_28d + count_thumbs_down_28d, 0),
            0.0
        ) as thumbs_down_share_28d,

        ----------  social
        count_friends_added_28d,
        count_playlist_adds_28d,

        ----------  friction
        count_adverts_28d,
        count_adverts_28d
        / greatest(count_songs_28d, 1) as adverts_per_song_28d,
        count_errors_28d,
        count_help_visits_28d,
        count_settings_visits_28d,
        count_downgrade_visits_28d,

        ----------  subscription
        level_at_cutoff = 'paid' as is_paid,
        coalesce(
            count_paid_days_28d / nullif(count_active_days_28d, 0), 0.0
        ) as paid_days_share_28d

    from eligible

)

select * from features
