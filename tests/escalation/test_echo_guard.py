"""The public-reply echo guard blocks repeats of the reporter's words, place and phone number."""
from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from escalation.echo_guard import ABBREVIATIONS, echoes_reporter, phone_numbers

FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL,
           PhoneNumberFormat.RFC3966]
SAFE_REPLIES = ["Help is on the way. Please check your DMs.", "A dispatcher has seen your message.",
                "If you can, call 999.", "Crews are responding; follow our updates.", "Please stay safe and reply by DM."]


def _numbers() -> st.SearchStrategy[phonenumbers.PhoneNumber]:
    gb_mobile = st.integers(7_000_000_000, 7_999_999_999).map(lambda n: ("+44" + str(n), "GB"))
    gb_landline = st.integers(1_130_000_000, 2_099_999_999).map(lambda n: ("+44" + str(n), "GB"))
    us = st.integers(201_200_0000, 989_999_9999).map(lambda n: ("+1" + str(n), "US"))
    return (st.one_of(gb_mobile, gb_landline, us).map(lambda t: phonenumbers.parse(*t))
            .filter(phonenumbers.is_possible_number))


def _written(number, fmt, separator: str) -> str:
    text = phonenumbers.format_number(number, fmt)
    return text.replace(" ", separator) if separator else text


@settings(max_examples=150, deadline=None)
@given(number=_numbers(), said_as=st.sampled_from(FORMATS), replied_as=st.sampled_from(FORMATS),
       separator=st.sampled_from(["", " ", "-", ".", "  "]), safe=st.sampled_from(SAFE_REPLIES))
def test_a_phone_number_in_any_format_is_an_echo(number, said_as, replied_as, separator, safe):
    post = f"please help, ring me on {_written(number, said_as, '')} my husband is outside"
    reply = f"{safe} We will call you on {_written(number, replied_as, separator)}"
    assert echoes_reporter(reply, [post], []) is not None, (post, reply)
    # Blocked for the number itself, not only because the digits happen to make a four-word quote:
    assert echoes_reporter(reply, ["please help " + _written(number, said_as, "")], []) is not None
    assert str(number.national_number) in phone_numbers(post)
    assert echoes_reporter(safe, [post], []) is None


@pytest.mark.parametrize("written, replied", [
    ("07700 900123", "0 7 7 0 0 - 9 0 0 - 1 2 3"),
    ("07700900123", "(07700) 900 123"),
    ("+44 (0)7700 900123", "07700-900-123"),
    ("(555) 010-9999", "tel:+1-555-010-9999"),
    ("555.010.9999", "+1 555 010 9999"),
    ("07700 900123", "０７７００ ９００１２３"),  # full-width digits
    ("07700 900123", "07700\u200b900123"),  # a zero-width space between the digits
])
def test_phone_numbers_written_differently(written, replied):
    assert echoes_reporter(f"Calling {replied} now", [f"my number is {written}"], []) is not None


def test_numbers_the_service_gives_are_not_the_reporters():
    post = "help my flat is on fire, 07700 900123, 12 High Street"
    assert echoes_reporter("Call 999 now or 101 if it is not urgent.", [post], []) is None
    assert phone_numbers("flat 3, 12 High Street") == set()


STREETS = ["Baker", "Station", "High", "Kirkgate", "Mill", "Church", "5th", "Saint Mary's"]
TYPES = {"Street": ["St", "St.", "STREET", "Str"], "Road": ["Rd", "rd."], "Avenue": ["Ave", "Av"],
         "Lane": ["Ln"], "Drive": ["Dr"], "Crescent": ["Cres"], "Terrace": ["Tce"], "Square": ["Sq"]}


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(STREETS), kind=st.sampled_from(sorted(TYPES)), data=st.data(),
       house=st.integers(1, 400), safe=st.sampled_from(SAFE_REPLIES))
def test_an_address_abbreviated_or_spelled_out_is_an_echo(name, kind, data, house, safe):
    place = f"{house} {name} {kind}, Leeds"
    short = data.draw(st.sampled_from(TYPES[kind]))
    for reply in (f"{safe} Crew going to {name} {short}", f"{safe} Units near {name.upper()} {kind.lower()}",
                  f"Officers at {house} {name}"):
        assert echoes_reporter(reply, [], [place]) == "it names the location the reporter gave", (place, reply)
    assert echoes_reporter(safe, [], [place]) is None
    # And the other way round: the reporter abbreviated, the reply spells it out.
    assert echoes_reporter(f"Crew going to {name} {kind}", [], [f"{name} {short}"]) is not None


def test_generic_words_alone_are_not_an_echo():
    assert echoes_reporter("Stay on the road and keep safe", [], ["12 Station Road"]) is None
    assert echoes_reporter("Crew going to the station road", [], ["12 Station Road"]) is not None


def test_words_hidden_by_invisible_characters_or_case_are_still_a_quote():
    post = "HELP my dad collapsed not breathing"
    assert echoes_reporter("we know your d\u200bad col\u00adlapsed NOT breathing", [post], []) is not None


@given(st.text(max_size=200))
def test_the_guard_never_crashes_and_an_empty_reporter_record_is_never_echoed(reply):
    assert echoes_reporter(reply, [], []) is None


def test_every_abbreviation_stands_for_a_word():
    assert all(full.isalpha() and full not in ABBREVIATIONS for full in ABBREVIATIONS.values())
