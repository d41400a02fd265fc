{#- Device, operating system and browser from a user agent. Sparkify's
    logs come from desktop browsers, iPhones and iPads of 2014; anything
    else is 'other' rather than a guess. Dispatched, so an adapter can use
    a native parser instead. -#}

{% macro device_type_from_user_agent(user_agent) -%}
    {{ return(adapter.dispatch('device_type_from_user_agent', 'sparkify')(
        user_agent
    )) }}
{%- endmacro %}

{% macro default__device_type_from_user_agent(user_agent) -%}
    case
        when {{ user_agent }} is null then 'unknown'
        when {{ user_agent }} like '%iPad%' then 'tablet'
        when {{ user_agent }} rlike 'iPhone|Android.*Mobile|Windows Phone'
            then 'phone'
        when {{ user_agent }} like '%Android%' then 'tablet'
        when {{ user_agent }} rlike 'Windows|Macintosh|X11|Linux'
            then 'desktop'
        else 'other'
    end
{%- endmacro %}


{% macro os_family_from_user_agent(user_agent) -%}
    {{ return(adapter.dispatch('os_family_from_user_agent', 'sparkify')(
        user_agent
    )) }}
{%- endmacro %}

{% macro default__os_family_from_user_agent(user_agent) -%}
    case
        when {{ user_agent }} is null then 'unknown'
        when {{ user_agent }} rlike 'iPhone|iPad|iPod' then 'ios'
        when {{ user_agent }} like '%Android%' then 'android'
        when {{ user_agent }} like '%Windows%' then 'windows'
        when {{ user_agent }} like '%Mac OS X%' then 'macos'
        when {{ user_agent }} rlike 'Linux|X11' then 'linux'
        else 'other'
    end
{%- endmacro %}


{% macro browser_from_user_agent(user_agent) -%}
    {{ return(adapter.dispatch('browser_from_user_agent', 'sparkify')(
        user_agent
    )) }}
{%- endmacro %}

{% macro default__browser_from_user_agent(user_agent) -%}
    case
        when {{ user_agent }} is null then 'unknown'
        when {{ user_agent }} rlike 'MSIE|Trident' then 'internet explorer'
        when {{ user_agent }} rlike 'Firefox/' then 'firefox'
        when {{ user_agent }} rlike 'Chrome/|Chromium/' then 'chrome'
        when {{ user_agent }} rlike 'Safari/' then 'safari'
        else 'other'
    end
{%- endmacro %}
