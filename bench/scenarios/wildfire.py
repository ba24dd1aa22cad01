"""Generator: a wildfire front crossing north-east Attica (Greece) over the replay, a missing-child
appeal copied across Thessaloniki in the middle of it, and lone cries for help, many of them in
the fire's own villages, that have nothing to do with the fire.

Written without reading the grouping rules (grouping/) or triage code or data (triage/): only
bench/, the scenario interface of bench/scenarios/burst.py and two_events.py, README.md and docs/.
Its grouping counts are therefore held-out evidence, unlike the first two scenarios'.

The same interface as bench/scenarios/burst.py: `burst_scenario(n_burst, n_unrelated, seconds,
seed, n_quiet)` returns `Entry`s sorted by offset; `UNRELATED_AUTHOR` / `QUIET_AUTHOR` prefix the
two sets of lone cries (the first in plain English with the words people usually use for an
emergency, the second in plain words, typos and other languages, meant to get past a keyword
list); `EVENTS` names the events and every other entry says which it reports (`Entry.event`; ""
for chatter of no event: jokes that use fire words figuratively, posts naming both events).

What it models:
  - a moving front: the fire starts at Varnavas and is driven south-west by the wind through
    Kapandriti, a flank towards Marathonas, Stamata, Dionysos, Drosia, Nea Penteli and the edge of
    Chalandri; each report speaks mostly of where the front is at that moment, some of where it
    has been (aftermath) or is heading (warnings, 112 evacuation messages); geotags (X only)
    move with it; a share name no place at all ("the houses along the ravine", "our village");
  - the languages of the place: Greek (Greek script and Greeklish), English, and tourists and
    workers writing in French, Spanish, Portuguese and romanised Hindi; typos, lost accents,
    emoji, hashtags;
  - relayed, third-person pleas ("my gran is alone in her house in ..."), help asked in private
    messages, 112 alerts and volunteer appeals copied word for word, news, prayers, reshares,
    replies in threads, long running accounts on Reddit;
  - a second event from 35 % of the replay on: a six-year-old missing on the Thessaloniki
    seafront, 500 km away, mostly copies of one appeal ("PLEASE SHARE"), as the fire's appeals are;
  - chatter that uses the fire's words figuratively ("this playlist is fire", "trapped in a
    meeting, send help", marathon training in the heat);
  - lone cries of every kind (a car crash, a stroke, a silent domestic-abuse cry, a missing child,
    falls, drownings, overdoses), several in the fire's villages or on its roads, a few posted as
    replies in a fire thread, worded without mention of the fire.
Standard library only; the same seed gives the same entries.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

UNRELATED_AUTHOR = "lone_sos_"
QUIET_AUTHOR = "hushed_cry_"
EVENTS = ("wildfire", "missing_child")
LIMITS = {"x": 280, "bluesky": 300, "reddit": 10_000}
CHILD_STARTS = 0.35  # share of the replay before the first missing-child post


@dataclass(frozen=True, slots=True)
class Place:
    name: str  # as English and Latin-script posts write it
    greek: str  # nominative, Greek script
    greek_in: str  # "in/at <place>" in Greek (σε + article)
    greeklish: str
    lat: float
    lon: float
    starts: float  # share of the replay when the front reaches it
    safe: str  # where the 112 message sends people
    safe_greek: str


# The front, in the order it reaches each locality.
FRONT = [
    Place("Varnavas", "Βαρνάβας", "στον Βαρνάβα", "Varnava", 38.2256, 23.8833, 0.0, "Marathonas", "Μαραθώνα"),
    Place("Kapandriti", "Καπανδρίτι", "στο Καπανδρίτι", "Kapandriti", 38.2133, 23.8769, 0.12, "Afidnes", "Αφίδνες"),
    Place("Marathonas", "Μαραθώνας", "στον Μαραθώνα", "Marathona", 38.1536, 23.9631, 0.24, "Nea Makri", "Νέα Μάκρη"),
    Place("Stamata", "Σταμάτα", "στη Σταμάτα", "Stamata", 38.1167, 23.8667, 0.38, "Drosia", "Δροσιά"),
    Place("Dionysos", "Διόνυσος", "στον Διόνυσο", "Dionyso", 38.1073, 23.8700, 0.5, "Kifisia", "Κηφισιά"),
    Place("Drosia", "Δροσιά", "στη Δροσιά", "Drosia", 38.1150, 23.8560, 0.62, "Ekali", "Εκάλη"),
    Place("Nea Penteli", "Νέα Πεντέλη", "στη Νέα Πεντέλη", "Nea Penteli", 38.0500, 23.8667, 0.74, "Melissia", "Μελίσσια"),
    Place("Patima Chalandriou", "Πάτημα Χαλανδρίου", "στο Πάτημα Χαλανδρίου", "Patima", 38.0400, 23.8200, 0.86,
          "Chalandri centre", "κέντρο Χαλανδρίου"),
]
# Where no place is named: the posts still come from the front, by wording or geotag only.
_UNNAMED = ["the houses along the ravine", "the settlement past the quarry", "our village", "the estate behind the pines",
            "up by the monastery", "the farms above the reservoir", "the end of our road", "the hill behind us"]
_UNNAMED_GREEK = ["στον οικισμό πάνω από τη ρεματιά", "στο χωριό μας", "πίσω από το πευκοδάσος", "δίπλα στο μοναστήρι",
                  "στα χωράφια πάνω από τη λίμνη"]
_ROADS = ["Marathonos Avenue", "Dionysou Avenue", "the Kapandriti road", "Stamatas Avenue", "Penteli road",
          "the old Varnavas road", "Leoforos Dimokratias"]
_STREETS = ["Pefkon", "Agiou Georgiou", "Eleftheriou Venizelou", "Kyprou", "Ethnikis Antistaseos", "Dimokratias",
            "Agias Paraskevis", "Iasonos", "Kanari", "Anemonon", "Platanon", "Thermopylon"]

_FIRE_SIGHTS = ["ash falling like snow", "the sky's gone orange", "pine trees going up like torches",
                "embers landing in the gardens", "smoke so thick you can't see the road", "the whole ridge is alight",
                "helicopters dropping water", "canadairs circling overhead", "the power's gone off", "flames jumping the road",
                "the wind keeps changing", "you can hear it roaring", "a gas canister just went off", "cars abandoned on the road",
                "the firefighters pulled back", "sparks coming over the wall", "the olive grove is burning", "horses loose on the road"]
_FIRE_REPORTS = [
    "{place} right now: {sight}", "fire has reached {place}, {sight}", "{sight} in {place}",
    "never seen anything like it in {place}, {sight}", "wildfire at {place}, {sight}", "{sight}. this is {place} 10 min ago",
    "the fire is coming down the hill towards {place}, {sight}", "flames at the edge of {place} now, {sight}",
    "{place} is burning. {sight}", "update from {place}: {sight}", "leaving {place} now, {sight}",
    "drove through {place} just now, {sight}, dont come this way", "front line is at {place} now, {sight}",
]
_AFTER = ["{place} this morning: everything black, still smoking", "came back to {place}, half the street is gone",
          "{place} is smouldering, houses burnt out, firefighters still there", "the fire passed {place} an hour ago, flare ups everywhere"]
_WARN = ["they say the fire is heading for {place}, get ready to leave", "smoke over {place} already, the front is maybe 3 km away",
         "police going door to door in {place} telling people to leave", "{place} next?? wind is blowing straight at us"]
_FIRE_GREEK = [
    "Φωτιά τώρα {gin}, καίγονται σπίτια", "Η φωτιά έφτασε {gin}, δεν βλέπουμε τίποτα από τον καπνό",
    "Τρομερή κατάσταση {gin}, πέφτει στάχτη παντού", "Εκκένωση {gin}, όλοι φεύγουν προς {safe}",
    "Καίγεται το βουνό, η φωτιά κατεβαίνει προς τα σπίτια {gin}, ο αέρας είναι πολύ δυνατός", "Κόλαση {gin}, τα αεροπλάνα δεν προλαβαίνουν",
    "Κόπηκε το ρεύμα {gin}, η φωτιά είναι στην αυλή", "Πυρκαγιά {gin}, κλειστός ο δρόμος",
]
_FIRE_GREEKLISH = ["fotia {gl} twra, kaigetai to vouno", "ekkenwsi sto {gl}!! fugete", "o kapnos ston {gl} einai aforitos",
                   "kaigontai spitia sto {gl}, pou einai ta aeroplana??", "h fwtia eftase {gl}, vlepw floges apo to mpalkoni"]
_FIRE_OTHER = [
    "incendie énorme près de {place}, on voit les flammes depuis l'hôtel", "on évacue {place}, la fumée est partout",
    "l'incendie est à {place} maintenant, les canadairs tournent au-dessus de nous",
    "incendio enorme cerca de {place}, el cielo está naranja", "nos están evacuando de {place}, hay humo por todas partes",
    "el fuego ya llegó a {place}, se ven las llamas desde la carretera",
    "incêndio muito perto de {place}, o céu está laranja", "estamos saindo de {place}, muita fumaça e cinza",
    "{place} ke paas bahut badi aag lagi hai, dhuan hi dhuan", "aag {place} tak pahunch gayi hai, sab log bhaag rahe hain",
    "pahadi pe aag hai {place} ke upar, hawa bahut tez hai",
]
_FIRE_HELP = [
    "my gran is alone in her house on {street} in {place} and the fire is at the fence, she can't walk. please someone go",
    "we're cut off at the end of {street}, {place}, flames both sides of the road, 2 kids with us",
    "my parents won't leave their house in {place}, smoke is getting inside and dad has a bad chest",
    "stuck in the car on {road} near {place}, smoke is black, we can't see to drive",
    "my brother is a shepherd above {place}, his phone just cut off mid-call and the fire is up there",
    "elderly couple at {num} {street} {place} still inside, nobody has come for them",
    "we're on the beach below {place} with the kids, the fire is behind us and there's no way out but the sea",
    "the care home in {place} still has residents in it, staff need buses NOW",
    "friend texted me she's trapped in her garage in {place}, the door won't open with no power",
]
_FIRE_HELP_GREEK = [
    "Η γιαγιά μου είναι μόνη της στο σπίτι {gin}, οδός {street}, δεν μπορεί να περπατήσει. Βοηθήστε!",
    "Είμαστε εγκλωβισμένοι {gin}, η φωτιά είναι γύρω μας, έχουμε μωρό",
    "o pateras mou einai sto spiti sto {gl} kai den apantaei, h fwtia einai dipla",
]
_FIRE_HELP_OTHER = [
    "ma mère est seule dans la maison à {place}, le feu arrive, elle ne peut pas marcher",
    "estamos atrapados en la casa de {place}, el fuego está en el jardín, ayuda",
    "meus pais estão presos em casa em {place}, o fogo está no quintal",
    "hum log farm pe phase hain {place} ke upar, aag paas aa rahi hai, koi nikaalo",
]
_NEWS = [
    "BREAKING: wildfire in north-east Attica reaches {place}, evacuation ordered",
    "Greek wildfire spreads towards Athens suburbs, {place} evacuated",
    "ΕΚΤΑΚΤΟ: Ανεξέλεγκτη η πυρκαγιά στη ΒΑ Αττική, εκκενώσεις {gin}",
    "Live: Attica wildfire, front now at {place}, winds of 7 Beaufort",
    "Fire service: 500 firefighters, 30 aircraft at the Attica wildfire near {place}",
    "Feux en Grèce : l'incendie atteint {place}, au nord-est d'Athènes",
    "Incendio en Grecia: evacúan {place}, cerca de Atenas",
]
_ALERT = "⚠️ 112: Wildfire in your area. If you are in {place}, move away towards {safe}. Follow the instructions of the authorities."
_ALERT_GREEK = "⚠️ 112: Πυρκαγιά σε δασική έκταση στην περιοχή σας. Αν βρίσκεστε {gin}, απομακρυνθείτε προς {safe}."
_APPEALS = [
    "PLEASE SHARE: the animal shelter in Stamata needs anyone with a trailer or van to move the dogs out NOW",
    "ΚΟΙΝΟΠΟΙΗΣΤΕ: χρειάζονται νερά, μάσκες και κολλύρια στο κλειστό γυμναστήριο Διονύσου για τους πυρόπληκτους",
    "PLEASE SHARE: free rooms for families evacuated from the fire, DM us, Kifisia and Marousi",
    "RT to help: lost grey cat near Kapandriti after the evacuation, chipped, answers to Loukoumi",
]
_COMMENT = [
    "is {road} closed?", "why are there no water bombers over {place}??", "smoke visible from the Acropolis right now",
    "ash on my balcony in Kifisia, is the fire getting close", "anyone know if {place} has been evacuated?",
    "the air in Athens smells like burning", "my aunt lives in {place}, has anyone heard anything?",
    "every summer the same. where is the prevention?", "the wind is the problem, 70 km/h gusts", "which roads are open out of {place}?",
    "the drone footage over {place} is apocalyptic", "Greece burning again. climate change is here",
]
_SUPPORT = [
    "praying for everyone in {place} 🙏", "Κουράγιο Αττική 🙏", "stay safe Attica", "courage à tous en Grèce ❤️",
    "fuerza Grecia 🇬🇷", "força Grécia, estamos com vocês", "thank you firefighters, heroes", "Καλή δύναμη στους πυροσβέστες",
    "thinking of everyone evacuated from {place} tonight", "hum sab Greece ke liye dua kar rahe hain 🙏",
]
_REPLIES = [
    "same here on {street}, {sight}", "my road 😭 {sight}", "can confirm, {sight} at {place}", "is everyone out of {place}?",
    "my cousin is in {place}, she's not answering", "stay safe, it's worse further up", "τα ίδια κι εδώ, {sight_gr}",
    "ίδια κατάσταση {gin}", "le feu est juste derrière nous aussi", "aquí también, mucho humo", "aqui também, muita fumaça",
    "yahan bhi dhuan hai bahut", "get out now, don't wait for the message",
]
_SIGHTS_GREEK = ["πέφτει στάχτη παντού", "δεν βλέπεις από τον καπνό", "καίγονται τα πεύκα", "κόπηκε το ρεύμα"]
_LONG_SENTENCES = [
    "We saw the smoke over {place} around noon and by two the sky had gone dark orange.",
    "The wind kept turning, one minute the flames were on the ridge and the next they were in the gardens on {street}.",
    "The 112 message came but most of us were already packing the cars.",
    "{road} was blocked by abandoned cars so people were turning round in the smoke.",
    "The power went off at about three and the water pressure dropped too, so the garden hoses were useless.",
    "Neighbours were wetting the walls and the roofs, the older ones refused to leave.",
    "A water bomber came over very low, then nothing for an hour.",
    "Someone said the fire jumped the gorge and is in the pines behind the school now.",
    "We are at a friend's in the city, we don't know if the house is still there.",
    "Please don't drive up to look, the fire engines can't get through.",
]
_TAGS = ["#Attica", "#wildfire", "#φωτιά", "#πυρκαγιά", "#GreeceFires", "#Greece", "#Penteli", "#Varnavas",
         "#prayforgreece", "#incendie", "#incendio"]
_EMOJI = ["🔥", "😱", "😭", "🙏", "⚠️", "🚒", "💔", "🥵"]

# The second event: a child missing on the Thessaloniki seafront, mostly copies of one appeal.
_CHILD_APPEAL = ("PLEASE SHARE: 6 year old Eleni went missing on the Nea Paralia seafront in Thessaloniki near the "
                 "Umbrellas around 7pm. Yellow dress, white trainers. Call 100 if you see her.")
_CHILD_APPEAL_GREEK = ("ΚΟΙΝΟΠΟΙΗΣΤΕ: Χάθηκε η 6χρονη Ελένη στη Νέα Παραλία Θεσσαλονίκης κοντά στις Ομπρέλες. "
                       "Φοράει κίτρινο φόρεμα και λευκά παπούτσια. Καλέστε το 100.")
_CHILD_POSTS = [
    "my daughter Eleni is lost on the Nea Paralia near the Umbrellas, 6 yrs old, yellow dress, please look around you",
    "police and lots of people searching the seafront in Thessaloniki for a little girl in a yellow dress",
    "anyone near the White Tower? a 6 year old girl is missing from the Nea Paralia",
    "χάθηκε κοριτσάκι στη Νέα Παραλία, κίτρινο φορεματάκι, ψάξτε γύρω σας",
    "xathike koritsaki 6 xronwn sti Nea Paralia, kitrino forema, an to deite pareta 100",
    "still no news of the girl missing on the Thessaloniki seafront, divers checking the water near the Umbrellas",
    "une petite fille de 6 ans a disparu sur le front de mer de Thessalonique, robe jaune",
    "we're walking the seafront from the Umbrellas to the port looking for Eleni, join us if you're near",
]
_CHILD_REPLIES = ["sharing 🙏", "shared, praying she's found", "κοινοποιήθηκε 🙏", "we're near Aristotelous, looking",
                  "any news??", "coastguard boat just went past the Umbrellas", "checked the playground at the park, nothing"]

# Chatter that uses the fire's words figuratively, or names both events: of no event.
_CHATTER = [
    "this playlist is straight fire 🔥🔥", "my inbox is a dumpster fire today", "the heat in this office is killing me",
    "marathon training at 38 degrees, pray for me 😂", "trapped in a 3 hour meeting, send help", "I'm dead 💀 this meme",
    "Olympiacos got burned alive in the second half", "new season of the show is lit 🔥", "my code is on fire and not the good kind",
    "ice coffee or I die, no middle ground", "this exam is going to kill me", "Athens traffic is a war zone today lol",
    "my phone battery is on life support", "help my cat is stuck in a box again 😂", "the new mixtape is an absolute blaze",
]
_BOTH = ["a fire in Attica and a missing little girl in Thessaloniki, what a day for Greece",
         "thinking of everyone near the fire and of little Eleni's family in Thessaloniki",
         "news tonight: the Attica wildfire and the missing girl in Thessaloniki"]

# Lone cries in plain English with the words people usually use for an emergency (help, ambulance,
# bleeding, not breathing, knife...): the set a keyword list would likely catch. Several are in
# the fire's villages or on its roads; none is about the fire.
_LONE = [
    ("car crash on Marathonos Avenue at the Nea Makri turn, the driver is unconscious and bleeding, please send an ambulance", (38.088, 23.972)),
    ("I think my dad is having a stroke, his face has dropped and he can't lift his arm, 14 Irodou Attikou, Kifisia, ambulance please", (38.074, 23.811)),
    ("please help, my husband is beating me and has locked the doors, I can't call, flat 3, 22 Agiou Nikolaou, Rafina", (38.022, 24.005)),
    ("my 5 year old son is missing at the beach in Glyfada, we can't find him anywhere, help", (37.862, 23.748)),
    ("help, a man has been stabbed outside the kiosk on Syngrou Avenue, he's bleeding a lot", (37.955, 23.713)),
    ("my grandmother fell down the stairs and is not breathing, Ermou 40, Nafplio, please help", (37.567, 22.806)),
    ("overdose at the hostel on Navarinou square in Thessaloniki, my friend is unconscious and won't wake up", (40.633, 22.948)),
    ("heart attack on the ferry to Aegina, a man collapsed on deck and isn't breathing, we need help", None),
    ("my baby is choking and turning blue, Patission 120, Athens, ambulance now", (37.999, 23.733)),
    ("tourist drowning off the beach at Schinias, he went under and didn't come up, help", (38.141, 24.032)),
    ("someone is breaking into our holiday flat in Chania, I'm hiding in the bathroom, help", (35.514, 24.018)),
    ("car accident on the Athens-Lamia motorway near Malakasa, car on its roof, people trapped inside", (38.241, 23.800)),
    ("my son took a lot of pills and is unconscious, Kyprou 7, Larissa, please send an ambulance", (39.639, 22.419)),
    ("help me, my ex has a knife and is banging on my door in Peristeri, I'm scared he'll kill me", (38.013, 23.691)),
    ("woman collapsed at Piraeus port gate E2, not breathing, someone is doing CPR, we need an ambulance", (37.942, 23.641)),
    ("Lisbon: my mother can't breathe and her lips are blue, Rua da Prata 80, please help", (38.710, -9.137)),
    ("Barcelona, man bleeding heavily after a motorbike crash on Carrer de Balmes, please send an ambulance", (41.395, 2.152)),
    ("my daughter is having a seizure and won't stop shaking, 12 rue Mercière, Lyon, help", (45.763, 4.832)),
    ("emergency in Delhi, my father collapsed and is not breathing, Lajpat Nagar 2, please help", (28.567, 77.243)),
    ("my wife is bleeding heavily after giving birth at home in Kalamata, send help now", (37.039, 22.114)),
]
# Lone cries worded without the usual emergency words: plain description, typos, relayed from
# someone else, other languages. `reply`: posted as a reply in a thread of the fire.
_QUIET = [
    ("just saw a scooter go under the lorry at the lights in Stamata, the lad isnt moving and theres a puddle under his head", (38.117, 23.867), False),
    ("mi hermano se salió de la carretera con la moto en la curva de Agios Stefanos y no contesta, está tirado en la cuneta", (38.145, 23.858), False),
    ("yiayia suddenly cant get her words out and her mouth has gone crooked, shes sliding off the chair. Kapandriti, the square", (38.213, 23.877), True),
    ("a minha avó de repente ficou com metade da cara caída e não consegue falar, rua do Souto 12, Braga", (41.551, -8.424), False),
    ("papa ka ek haath aur pair achanak kaam nahi kar raha, bol bhi nahi pa rahe, Noida sector 62", (28.627, 77.373), False),
    ("ma mère m'écrit que papa a la bouche de travers et ne trouve plus ses mots, ils sont à Nea Makri, villa Anemone, moi je suis à Paris", None, False),
    ("can you send someone to 9 Kyprou street Marousi, act like its a food delivery. hes here and listening, he took my phone before", (38.050, 23.807), False),
    ("δεν μπορώ να μιλήσω, είναι μέσα στο σπίτι και με χτυπάει από το πρωί, Ηρώων Πολυτεχνείου 30 Πειραιάς", (37.943, 23.647), False),
    ("no puedo hablar, él está en la otra habitación, me quitó el móvil y tengo marcas en el cuello, calle Mayor 3 Alcalá", (40.482, -3.364), False),
    ("voithia, o antras mou einai methysmenos kai me kleidose mesa, kratai maxairi, Thiseos 55 Kallithea", (37.955, 23.702), False),
    ("our 4yo wandered off at Flisvos marina about 40 min ago, blue dinosaur tshirt, nobody has seen him and its getting dark", (37.930, 23.685), False),
    ("η κόρη μου 8 χρονών δεν γύρισε από την παιδική χαρά στο Περιστέρι, πέρασαν 3 ώρες και το κινητό της είναι κλειστό", (38.013, 23.691), False),
    ("meu filho de 7 anos sumiu na praia de Copacabana, posto 4, faz uma hora que a gente procura", (-22.976, -43.189), False),
    ("ma fille de 6 ans a disparu au camping de Saint-Cyprien il y a une heure, elle portait un maillot rose", (42.618, 3.035), False),
    ("bloke on the rocks at Vouliagmeni got knocked in by a wave and hes face down in the water", (37.808, 23.786), False),
    ("papa bathroom mein gir gaye, sir se khoon beh raha hai aur kuch bol nahi rahe, hum Koukaki Athens mein hain", (37.964, 23.724), False),
    ("ο παππούς έπεσε στο μπαλκόνι και δεν αντιδρά, ανάσα ακούω ελάχιστα, Δροσιά οδός Ανεμώνων 4", (38.115, 23.856), True),
    ("my flatmate drank a whole bottle of vodka with some of her tablets, shes cold and snoring weird and i cant wake her", None, False),
    ("ο γιος μου ήπιε χλωρίνη από το ντουλάπι, κάνει εμετό και κλαίει, Λάρισα", (39.639, 22.419), False),
    ("un homme vient de tomber du quai au Vieux-Port de Marseille, il ne remonte pas", (43.295, 5.374), False),
    ("lad came off the quad bike on the track above Schinias, his leg is facing the wrong way and hes gone grey and sweaty", (38.150, 24.010), False),
    ("mi abuela me acaba de escribir desde Grammatiko que el abuelo se cayó en el patio y no se mueve ni contesta", (38.208, 23.967), False),
    ("sorry to hijack, my neighbour in Kifisia has been lying at the bottom of her stairs since this morning, door locked, shes 90", (38.074, 23.811), True),
    ("someone in the next tent is making gargling noises and wont answer, camping Kokkino Limanaki, Rafina", (38.026, 24.004), False),
    ("o pappous mou den mporei na kounisei to deksi xeri kai milaei akatalavista, Chalandri, Agiou Georgiou 10", (38.021, 23.799), True),
    ("girl at the bus stop on Kifisias Avenue just went down and shes twitching, foam at her mouth, her friend is screaming", (38.036, 23.790), False),
]


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    text: str
    author: str  # unique per entry: the benchmark follows each post by it
    kind: str  # report, help, news, alert, appeal, comment, support, reshare, reply, long, chatter, both, unrelated, quiet
    lat: float | None = None
    lon: float | None = None
    platform: str = "x"
    event: str = ""  # one of EVENTS; "" for lone cries and chatter of no event
    is_dm: bool = False
    reply_to: str = ""  # the author of the earlier entry this one replies to, in its thread

    def as_json(self) -> dict:
        out = {"at": round(self.at, 3), "platform": self.platform, "text": self.text, "author": self.author}
        if self.lat is not None:
            out.update(lat=self.lat, lon=self.lon)
        if self.is_dm:
            out["is_dm"] = True
        return out


def _around(rng: random.Random, centre: tuple[float, float], km: float) -> tuple[float, float]:
    distance, bearing = km * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = centre[0] + distance * math.cos(bearing) / 111.32
    lon = centre[1] + distance * math.sin(bearing) / (111.32 * math.cos(math.radians(centre[0])))
    return round(lat, 6), round(lon, 6)


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [n for n, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not candidates:
        return text
    n = rng.choice(candidates)
    w, i = words[n], rng.randrange(1, len(words[n]) - 1)
    roll = rng.random()
    if roll < 0.4:
        w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    elif roll < 0.7:
        w = w[:i] + w[i + 1:]
    else:
        w = w[:i] + w[i] + w[i:]
    words[n] = w
    return " ".join(words)


_ACCENTS = str.maketrans("άέήίόύώϊΐéèêàçíóúãõñ", "αεηιουωιιeeeaciouaon")


def _dress(rng: random.Random, text: str, limit: int, tags: bool = True) -> str:
    """How people type under stress: casing, typos, lost apostrophes and accents, emoji, hashtags."""
    if rng.random() < 0.25:
        text = text.lower()
    elif rng.random() < 0.04:
        text = text.upper()
    if rng.random() < 0.2:
        text = text.replace("'", "")
    if rng.random() < 0.15:
        text = text.translate(_ACCENTS)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        text = _typo(rng, text)
    if rng.random() < 0.1:
        text += rng.choice(("!!", "!!!", "?!", " ...", "!!!!!"))
    if rng.random() < 0.35:
        text += " " + "".join(rng.sample(_EMOJI, rng.choice((1, 1, 2, 3))))
    if tags and rng.random() < 0.3:
        text += " " + " ".join(rng.sample(_TAGS, rng.choice((1, 1, 2, 3))))
    return text[:limit]


def _platform(rng: random.Random) -> str:
    roll = rng.random()
    return "x" if roll < 0.55 else "bluesky" if roll < 0.78 else "reddit"


def _front_at(share: float) -> int:
    return max(n for n, p in enumerate(FRONT) if p.starts <= share)


def _place_for(rng: random.Random, share: float) -> tuple[Place | None, str]:
    """Where a fire post speaks of: mostly the front's locality, some where it was or is heading,
    some no named place. (locality or None, the kind of moment: now, after, before)."""
    n = _front_at(share)
    roll = rng.random()
    if roll < 0.62:
        return FRONT[n], "now"
    if roll < 0.77 and n > 0:
        return FRONT[rng.randrange(max(0, n - 2), n)], "after"
    if roll < 0.88 and n + 1 < len(FRONT):
        return FRONT[n + 1], "before"
    if roll < 0.95:
        return FRONT[n], "now"
    return None, "now"


def _fire_text(rng: random.Random, place: Place | None, moment: str, kind: str, platform: str) -> str:
    limit = LIMITS[platform]
    street, road, num = rng.choice(_STREETS), rng.choice(_ROADS), rng.randint(1, 90)
    sight = rng.choice(_FIRE_SIGHTS)
    name = place.name if place else rng.choice(_UNNAMED)
    if kind == "help":
        if place is None:
            return _dress(rng, rng.choice(_FIRE_HELP).format(place=name, street=street, road=road, num=num), limit, False)
        roll = rng.random()
        if roll < 0.2:
            text = rng.choice(_FIRE_HELP_GREEK).format(gin=place.greek_in, street=street, gl=place.greeklish)
        elif roll < 0.32:
            text = rng.choice(_FIRE_HELP_OTHER).format(place=name)
        else:
            text = rng.choice(_FIRE_HELP).format(place=name, street=street, road=road, num=num)
        return _dress(rng, text, limit, tags=rng.random() < 0.3)
    roll = rng.random()
    if place is None:
        if roll < 0.25:
            text = f"φωτιά {rng.choice(_UNNAMED_GREEK)}, {rng.choice(_SIGHTS_GREEK)}"
        else:
            text = rng.choice(_FIRE_REPORTS).format(place=name, sight=sight)
    elif moment == "after" and roll < 0.6:
        text = rng.choice(_AFTER).format(place=name)
    elif moment == "before" and roll < 0.6:
        text = rng.choice(_WARN).format(place=name)
    elif roll < 0.25:
        text = rng.choice(_FIRE_GREEK).format(gin=place.greek_in, safe=place.safe_greek)
    elif roll < 0.33:
        text = rng.choice(_FIRE_GREEKLISH).format(gl=place.greeklish)
    elif roll < 0.45:
        text = rng.choice(_FIRE_OTHER).format(place=name)
    else:
        text = rng.choice(_FIRE_REPORTS).format(place=name, sight=sight)
    return _dress(rng, text, limit)


def _long(rng: random.Random, place: Place, platform: str) -> str:
    limit = LIMITS[platform]
    goal = rng.randint(limit - 40, limit) if platform != "reddit" else rng.randint(1_500, 6_000)
    parts: list[str] = []
    size = 0
    while size < goal:
        sentence = rng.choice(_LONG_SENTENCES).format(place=place.name, street=rng.choice(_STREETS),
                                                     road=rng.choice(_ROADS))
        if rng.random() < 0.25:
            sentence = _typo(rng, sentence)
        if size + len(sentence) + 1 > goal:
            break
        parts.append(sentence)
        size += len(sentence) + 1
        if platform == "reddit" and rng.random() < 0.1:
            parts.append("\n\nEDIT: " + rng.choice(_LONG_SENTENCES).format(
                place=place.name, street=rng.choice(_STREETS), road=rng.choice(_ROADS)))
            size += len(parts[-1])
    return " ".join(parts)[:limit] or _LONG_SENTENCES[0].format(place=place.name)


def _reshare(rng: random.Random, platform: str, original_author: str, original: str) -> str:
    handle = original_author if platform != "bluesky" else f"{original_author}.bsky.social"
    prefix = {"x": rng.choice((f"RT @{handle}: ", f"this 👇 RT @{handle}: ", f"ΚΟΙΝΟΠΟΙΗΣΤΕ RT @{handle}: ")),
              "bluesky": rng.choice((f"♻️ @{handle}: ", f"reposting from @{handle}: ")),
              "reddit": f"crossposting from u/{handle}: "}[platform]
    return (prefix + original)[:LIMITS[platform]]


def _fire_post(rng: random.Random, i: int, at: float, share: float,
               posted: dict[tuple[str, str], list[tuple[str, str]]]) -> Entry:
    author = f"attica_{i}"
    platform = _platform(rng)
    place, moment = _place_for(rng, share)
    roll = rng.random()
    is_dm, reply_to, kind = False, "", "report"
    if roll < 0.33:
        text = _fire_text(rng, place, moment, "report", platform)
    elif roll < 0.39:
        kind = "help"
        text = _fire_text(rng, place, "now", "help", platform)
        is_dm = rng.random() < 0.4
    elif roll < 0.44:
        kind = "news"
        where = place or FRONT[_front_at(share)]
        text = rng.choice(_NEWS).format(place=where.name, gin=where.greek_in)
    elif roll < 0.49:
        kind = "alert"  # the 112 message, copied word for word
        where = FRONT[min(len(FRONT) - 1, _front_at(share) + rng.choice((0, 0, 1)))]
        text = _ALERT.format(place=where.name, safe=where.safe) if rng.random() < 0.55 else \
            _ALERT_GREEK.format(gin=where.greek_in, safe=where.safe_greek)
    elif roll < 0.51:
        kind = "appeal"
        text = rng.choice(_APPEALS)
    elif roll < 0.62:
        kind = "comment"
        where = place or FRONT[_front_at(share)]
        text = _dress(rng, rng.choice(_COMMENT).format(place=where.name, road=rng.choice(_ROADS)), LIMITS[platform])
    elif roll < 0.70:
        kind = "support"
        where = place or FRONT[_front_at(share)]
        text = _dress(rng, rng.choice(_SUPPORT).format(place=where.name), LIMITS[platform])
    elif roll < 0.80 and posted.get(("wildfire", platform)):
        kind = "reshare"
        original_author, original = rng.choice(posted[("wildfire", platform)][-400:])
        text = _reshare(rng, platform, original_author, original)
    elif roll < 0.94 and posted.get(("wildfire", platform)):
        kind = "reply"
        reply_to, _ = rng.choice(posted[("wildfire", platform)][-300:])
        where = place or FRONT[_front_at(share)]
        text = rng.choice(_REPLIES).format(place=where.name, street=rng.choice(_STREETS), sight=rng.choice(_FIRE_SIGHTS),
                                           sight_gr=rng.choice(_SIGHTS_GREEK), gin=where.greek_in)
        if platform == "x":
            text = f"@{reply_to} {text}"
        text = _dress(rng, text, LIMITS[platform], tags=False)
    elif roll < 0.955:
        kind = "long"
        text = _long(rng, place or FRONT[_front_at(share)], platform)
    else:
        text = _fire_text(rng, place, moment, "report", platform)
    geotag = platform == "x" and not is_dm and kind in ("report", "help", "reply") and rng.random() < 0.4
    centre = (place.lat, place.lon) if place else (FRONT[_front_at(share)].lat, FRONT[_front_at(share)].lon)
    lat, lon = _around(rng, centre, 1.5) if geotag else (None, None)
    if not is_dm and kind in ("report", "help", "long", "news"):
        posted.setdefault(("wildfire", platform), []).append((author, text))
    return Entry(at, text, author, kind, lat, lon, platform, "wildfire", is_dm, reply_to)


_SEAFRONT = (40.6262, 22.9483)  # the Umbrellas, Nea Paralia, Thessaloniki


def _child_post(rng: random.Random, i: int, at: float, posted: dict[tuple[str, str], list[tuple[str, str]]]) -> Entry:
    author = f"thess_{i}"
    platform = _platform(rng)
    roll = rng.random()
    reply_to, kind = "", "appeal"
    if roll < 0.45:
        text = _CHILD_APPEAL if rng.random() < 0.6 else _CHILD_APPEAL_GREEK
        if rng.random() < 0.2:
            text = rng.choice(("🙏 ", "‼️ ", "please!! ", "")) + text
        text = text[:LIMITS[platform]]
    elif roll < 0.70:
        kind = "report"
        text = _dress(rng, rng.choice(_CHILD_POSTS), LIMITS[platform], tags=False)
        if rng.random() < 0.3:
            text += " " + rng.choice(("#Thessaloniki", "#Θεσσαλονίκη", "#missing", "#Eleni"))
    elif roll < 0.85 and posted.get(("missing_child", platform)):
        kind = "reply"
        reply_to, _ = rng.choice(posted[("missing_child", platform)][-200:])
        text = rng.choice(_CHILD_REPLIES)
        if platform == "x":
            text = f"@{reply_to} {text}"
    elif posted.get(("missing_child", platform)):
        kind = "reshare"
        original_author, original = rng.choice(posted[("missing_child", platform)][-200:])
        text = _reshare(rng, platform, original_author, original)
    else:
        text = _CHILD_APPEAL[:LIMITS[platform]]
    geotag = platform == "x" and kind in ("report", "reply") and rng.random() < 0.3
    lat, lon = _around(rng, _SEAFRONT, 1.0) if geotag else (None, None)
    if kind in ("appeal", "report"):
        posted.setdefault(("missing_child", platform), []).append((author, text))
    return Entry(at, text, author, kind, lat, lon, platform, "missing_child", False, reply_to)


def _lone(rng: random.Random, i: int, text: str, where: tuple[float, float] | None, prefix: str, kind: str,
          at: float, parent: Entry | None = None) -> Entry:
    """A lone cry: a third private messages, X posts with a place geotagged one time in two; a
    reply in a thread goes on its parent's platform, in public."""
    if parent is not None:
        reply_text = f"@{parent.author} {text}" if parent.platform == "x" else text
        return Entry(at, reply_text, f"{prefix}{i}", kind, None, None, parent.platform, "", False, parent.author)
    platform = ("x", "bluesky", "reddit")[i % 3]
    is_dm = i % 3 == 1 or (i % 4 == 0 and platform != "x")
    lat, lon = (None, None)
    if platform == "x" and not is_dm and where and rng.random() < 0.5:
        lat, lon = _around(rng, where, 0.3)
    return Entry(at, text, f"{prefix}{i}", kind, lat, lon, platform, "", is_dm)


def burst_scenario(n_burst: int = 16_000, n_unrelated: int = 20, seconds: float = 60.0,
                   seed: int = 999, n_quiet: int = len(_QUIET)) -> list[Entry]:
    """Entries sorted by offset. The fire's posts ramp up over the first tenth (the front reaches
    villages, then the suburbs, and everyone posts), the missing-child appeal spreads from
    CHILD_STARTS on; lone cries arrive once the fire is under way, some as replies in its threads."""
    rng = random.Random(seed)
    n_child = int(n_burst * 0.04) if n_burst >= 50 else 0
    n_chatter = int(n_burst * 0.03)
    n_both = max(1, n_burst // 1000)
    n_fire = n_burst - n_child - n_chatter - n_both
    slots = [("wildfire", seconds * (math.sqrt(rng.random() * 0.01) if n < n_fire // 40 else rng.random()))
             for n in range(n_fire)]
    start = CHILD_STARTS * seconds
    slots += [("missing_child", start + (seconds - start) * rng.random() ** 1.6) for _ in range(n_child)]
    slots.sort(key=lambda s: s[1])
    posted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    out: list[Entry] = []
    for i, (event, at) in enumerate(slots):  # in time order: a reply or reshare follows its original
        share = min(0.999, at / seconds) if seconds else 0.0
        out.append(_fire_post(rng, i, at, share, posted) if event == "wildfire" else _child_post(rng, i, at, posted))
    for n in range(n_chatter):
        platform = _platform(rng)
        text = _dress(rng, rng.choice(_CHATTER), LIMITS[platform], tags=False)
        out.append(Entry(seconds * rng.random(), text, f"chatter_{n}", "chatter", platform=platform))
    for n in range(n_both):
        at = start + (seconds - start) * rng.random()
        out.append(Entry(at, rng.choice(_BOTH), f"both_{n}", "both", platform=_platform(rng)))
    fire_roots = [e for e in out if e.event == "wildfire" and e.kind in ("report", "help", "news") and not e.is_dm]
    for n in range(n_unrelated):
        text, where = _LONE[n % len(_LONE)]
        at = seconds * (0.1 + 0.88 * rng.random())
        out.append(_lone(rng, n, text if n < len(_LONE) else f"{text} ({n // len(_LONE) + 1})", where,
                         UNRELATED_AUTHOR, "unrelated", at))
    for n in range(n_quiet):
        text, where, as_reply = _QUIET[n % len(_QUIET)]
        at = seconds * (0.1 + 0.88 * rng.random())
        earlier = [e for e in fire_roots if e.at < at - 0.5][-500:] if as_reply else []
        parent = rng.choice(earlier) if earlier else None
        out.append(_lone(rng, n, text, where, QUIET_AUTHOR, "quiet", at, parent))
    return sorted(out, key=lambda e: e.at)
