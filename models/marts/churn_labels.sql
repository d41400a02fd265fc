with

features as (

    select * from {{ ref('customer_features') }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

cutoffs as (

    select * from {{ ref('int_cutoffs') }}

),

labels as (

    select
        features.customer_cutoff_id,
        features.customer_id,
        features.cutoff_date,
        coalesce(
            customers.cancelled_at >= cast(cutoffs.cutoff_date as timestamp)
            and customers.cancelled_at
            < cast(cutoffs.horizon_end_date as timestamp),
            false
        ) as is_churned_in_horizon

    from features
    inner join cutoffs
        on features.cutoff_date = cutoffs.cutoff_date
    inner join customers
        on features.customer_id = customers.customer_id
    where cutoffs.is_labelled

)

select * from labels
