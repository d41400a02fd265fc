{% macro state_from_location(location) -%}
    {#- "Philadelphia-Camden-Wilmington, PA-NJ-DE-MD" -> "PA": the first
        state of the metro area after the last comma. -#}
    {{ return(adapter.dispatch('state_from_location', 'sparkify')(location)) }}
{%- endmacro %}

{% macro default__state_from_location(location) -%}
    {#- Null unless the location ends in ", XX" or ", XX-YY-...". -#}
    nullif(
        regexp_extract({{ location }}, ', *([A-Z]{2})(-[A-Z]{2})*$', 1),
        ''
    )
{%- endmacro %}
