{% macro state_from_location(location) -%}
    {#- "Philadelphia-Camden-Wilmington, PA-NJ-DE-MD" -> "PA": the first
        state of the metro area after the last comma. -#}
    {{ return(adapter.dispatch('state_from_location', 'sparkify')(location)) }}
{%- endmacro %}

{% macro default__state_from_location(location) -%}
    nullif(
        split(trim(element_at(split({{ location }}, ','), -1)), '-')[0],
        ''
    )
{%- endmacro %}
