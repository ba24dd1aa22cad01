"""Safety-net rules for the other languages people write to the account in.

The sentence encoder reads English only, so a post in Spanish, French, German, Italian,
Portuguese, Polish, Dutch, Welsh, Arabic, Urdu or Hindi/Urdu in Latin script reaches the model
as near-noise. These rules name the findings that matter in those languages; like every safety
net rule they only ever raise a decision. Only words that are not also English are used, so
English posts are unaffected.
"""
from __future__ import annotations

import re

from triage.base import SafetyRule

_I = re.I

OTHER_LANGUAGE_RULES = [
    # Life-threat findings: critical.
    SafetyRule("critical", "medical", re.compile(
        r"\b(?:no respira|ne respire (?:plus|pas)|atmet nicht|non respira|não respira|nie oddycha|"
        r"inconsciente|inconscient|bewusstlos|nieprzytomn\w*|saa?ns nahi (?:le )?(?:raha|rahi|pa)\w*|"
        r"hosh (?:nahi|nahin) hai)\b|لا يتنفس|سانس نہیں", _I)),
    # Someone hurting the poster now, in romanised Hindi/Urdu and Welsh.
    SafetyRule("critical", "domestic_abuse", re.compile(
        r"\b(?:(?:mujhe|mujhko|hume|humein|hamein|hum ko) (?:maar|peet|maarta|maarte) (?:raha|rahi|rahe)"
        r"|(?:mujhe|hume|humein) maar (?:dalega|dega|denge|dalenge|daalega)|jaan se maar"
        r"|(?:mae o|mae hi) (?:yn )?fy (?:nharo|mrifo|nghuro)|mae ganddo fe gyllell)\b", _I)),
    # Pleas and danger words that are not English.
    SafetyRule("high", "other", re.compile(
        r"\b(?:socorro|ayuda|auxilio|incendio|fuego|au secours|à l'aide|incendie|hilfe|feuer|"
        r"aiuto|soccorso|pomocy|ratunku|pożar|cuchillo|couteau|messer|pistola|pistolet|armado|"
        r"armé|bewaffnet|tân|helpwch|bachao|bachaao|police bhejo|ambulance bhejo|"
        r"madad (?:karo|kijiye|chahiye))\b|النجدة|ساعدوني|حريق|مدد|بچاؤ|آگ", _I)),
    SafetyRule("critical", "medical", re.compile(
        r"\b(?:no (?:respira|despierta|reacciona)|inconscientes?|ahog(?:a|ando|ó)|labios morados|"
        r"sobredosis|infarto|convulsi\w+|ne (?:respire|se réveille) (?:plus|pas)|inconsciente?s?|"
        r"crise cardiaque|atmet nicht|bewusstlos|wacht nicht auf|überdosis|herzinfarkt|"
        r"non (?:respira|si sveglia)|svenut[ao]|não (?:respira|acorda)|desmai\w+|"
        r"nie (?:oddycha|budzi się)|nieprzytomn\w+|przedawkowa\w+|zawał|ademt niet|bewusteloos|"
        r"overdosis|hartaanval|ddim yn anadlu|anymwybodol|saa?ns nahi|behosh|zeher|"
        r"khoon (?:beh|nikal)\w*)\b|فاقد الوعي|ينزف|جرعة زائدة|نوبة قلبية", _I)),
    SafetyRule("critical", "violence", re.compile(
        r"\b(?:apuñal\w+|disparos?|me (?:quiere|va a) matar|nos (?:quiere|va a) matar|"
        r"secuestr\w+|poignard\w+|coups? de feu|(?:va|veut) me tuer|été enlevée?s?|"
        r"erstochen|messerstecherei|schüsse|bringt (?:mich|uns) um|will (?:mich|uns) umbringen|"
        r"entführt|accoltellat\w+|spari|mi vuole uccidere|rapit[oa]|esfaquead\w+|tiros|baleado|"
        r"vai (?:me|nos) matar|sequestrad\w+|dźgnięt\w+|strzela\w*|zabije (?:mnie|nas)|porwan\w+|"
        r"neergestoken|schoten|ontvoerd|maar (?:dalega|dega|denge|dalenge)|goli (?:maar|chal))\b|"
        r"طعن|إطلاق نار|خطف|مخطوف", _I)),
    SafetyRule("critical", "hazard", re.compile(
        r"\b(?:se (?:está )?ahogando|se noie|noyade|ertrinkt|im (?:fluss|wasser|see)|sta annegando|"
        r"afogando|tonie|topi się|verdrinkt|boddi|doob (?:raha|rahi|gaya|gayi))\b|يغرق", _I)),
    SafetyRule("critical", "fire", re.compile(
        r"\b(?:(?:hay|quedan?) (?:gente|alguien|niños) dentro|(?:quelqu'un|des gens|des enfants) "
        r"(?:est |sont )?(?:à l'intérieur|dedans|coincés?)|(?:ist|sind) noch drin|"
        r"(?:jest|są) (?:jeszcze |nadal )?w środku|(?:c'è|ci sono) (?:ancora )?(?:qualcuno|persone|"
        r"bambini) dentro|(?:tem|há) (?:gente|alguém|crianças) (?:lá )?dentro|"
        r"zit(?:ten)? nog (?:binnen|in))\b|محاصر", _I)),
    SafetyRule("critical", "self_harm", re.compile(
        r"\b(?:quiero morir|me voy a matar|suicid\w+|je veux mourir|je vais me tuer|"
        r"selbstmord|mich umbringen|voglio morire|quero morrer|vou me matar|samobój\w+|"
        r"zelfmoord|khudkushi|marna chahta|marna chahti|(?:je vais|voy a|vou) (?:sauter|saltar|pular)|"
        r"me jeter)\b|انتحار", _I)),
    SafetyRule("critical", "missing_person", re.compile(
        r"\b(?:(?:mon fils|ma fille|mon enfant|mon bébé|mi hij[oa]|mi bebé|mein (?:sohn|kind|baby)|"
        r"meine tochter|mio figlio|mia figlia|meu filho|minha filha|mój syn|moja córka|mijn "
        r"(?:zoon|dochter|kind)).{0,30}(?:a disparu|desapareci\w*|no aparece|verschwunden|vermisst|"
        r"scompars[oa]|sumiu|desaparecid[oa]|zaginął|zaginęła|zniknął|vermist|is weg))", _I)),
    SafetyRule("critical", "violence", re.compile(
        r"\b(?:schlägt (?:mich|uns) (?:gerade|jetzt)|me (?:está )?pegando|me frappe|mi picchia|"
        r"está me batendo|bije mnie|slaat me)\b", _I)),
    # Serious but not life-threatening findings: high. Without them the model read a gas leak
    # or a fight written in German or Arabic as "not a request".
    SafetyRule("high", "hazard", re.compile(
        r"\b(?:(?:olor|huele|fuga|escape) (?:a |de )?gas|(?:odeur|fuite) de gaz|sent le gaz|"
        r"gasgeruch|riecht (?:\w+ )?nach gas|gasleck|gasaustritt|(?:odore|puzza|fuga) di gas|"
        r"(?:cheiro|vazamento|fuga) (?:a |de )?gás|zapach gazu|ulatni\w* gaz|wyciek gazu|"
        r"gaslucht|ruik gas|gaslek|arogl nwy|gas (?:ki )?(?:boo|leak ho)|"
        r"inundaci[oó]n|inondation|überschwemmung|hochwasser|alluvione|allagat[oa]|inundação|"
        r"enchente|powód[zź]|zalało|overstroming|"
        r"humo|fumée|rauch|c\'è (?:del |tanto )?fumo|fumo (?:nero|denso)|fumaça|dym|mwg|dhuan|"
        r"derrumb\w+|effondr\w+|eingestürzt|crollat[oa]|desabou|zawali\w+|ingestort)\b|"
        r"\b(?:(?:رائحة|ريحة|ريحه|تسرب) (?:ال)?غاز|فيضان|دخان|انهيار|گیس|سیلاب|دھواں)\b", _I)),
    SafetyRule("high", "violence", re.compile(
        r"\b(?:pelea|riña|agresi[oó]n|agredid[oa]|golpeando|bagarre|agression|agressée?|"
        r"schlägerei|prügelei|angegriffen|überfallen|rissa|aggressione|aggredit[oa]|picchiano|"
        r"briga|pancadaria|agredid[oa]|bójka|napad\w*|pobi\w+|vechtpartij|mishandel\w*|"
        r"aangevallen|ymladd|jhagda|maar[- ]?peet|peet rah\w*|مضاربة|مشاجرة|هجوم|اعتداء|"
        r"لڑائی|حملہ|مار پیٹ)\b", _I)),
    SafetyRule("high", "traffic", re.compile(
        r"\b(?:accidente|choque|atropell\w+|renversée?|carambolage|unfall|angefahren|zusammenstoß|"
        r"incidente|investit[oa]|tamponamento|acidente|atropelad[oa]|batida|wypadek|potrąc\w+|"
        r"zderzenie|ongeluk|aangereden|aanrijding|damwain|gaadi (?:ne )?(?:thok|maar)\w*|"
        r"حادث|اصطدام|دهس|حادثہ|ٹکر)\b", _I)),
    SafetyRule("high", "crime", re.compile(
        r"\b(?:ladr[oó]n|ladrones|robando|atraco|asalto|cambriol\w+|voleur|braquage|einbrecher|"
        r"einbruch|eingebrochen|ladr[oi]|rapina|scassinat\w+|ladrão|ladrões|assalto|roubando|"
        r"włamani\w+|włamyw\w+|złodziej\w*|inbreker|ingebroken|overval|lleidr|chor|daaku|"
        r"(?:me|nos) (?:sigue|siguen|persigue)|(?:me|nous) suit|verfolgt (?:mich|uns)|mi (?:segue|"
        r"seguono)|(?:me|nos) (?:segue|perseguindo)|śledzi mnie|volgt me|peecha kar|"
        r"سرقة|حرامي|يكسر (?:ال)?باب|يلاحقني|چور|ڈاکو|پیچھا)\b", _I)),
    SafetyRule("high", "medical", re.compile(
        r"\b(?:herid[oa]s?|lesionad[oa]|blessée?s?|verletzt\w*|ferit[oi]|ferid[oa]s?|machucad[oa]|"
        r"rann[ya]|ranni|gewond|anafu|zakhmi|chot lagi|sangra|saigne|blutet|sanguina|sangrando|"
        r"krwawi|bloedt|gwaedu|dolor (?:de|en el) pecho|douleur (?:à la|dans la) poitrine|"
        r"brustschmerz\w*|dolore al petto|dor no peito|ból w klatce|pijn op de borst|"
        r"seene (?:mein|me) dard|مصاب|جريح|ألم في (?:ال)?صدر|زخمی|سینے میں درد)\b", _I)),
    SafetyRule("high", "missing_person", re.compile(
        r"\b(?:desaparecid[oa]s?|disparue?s?|vermisst|verschwunden|scompars[oa]|sumiu|zagin\w+|"
        r"vermist|ar goll|laapata|gayab|kho (?:gaya|gayi)|مفقود|اختفى|اختفت|لاپتہ|گمشدہ)\b", _I)),
]


# "I cannot speak": a silent contact, whatever the language (the English wording is in
# signals.SILENT).
SILENT_OTHER = re.compile(
    r"\b(?:no puedo hablar|no puedo llamar|je ne peux pas (?:parler|appeler)|ich kann nicht "
    r"(?:sprechen|reden|anrufen)|non posso (?:parlare|chiamare)|não (?:posso|consigo) (?:falar|"
    r"ligar)|nie mogę (?:mówić|rozmawiać|zadzwonić)|ni (?:alla|fedra) i (?:ddim )?siarad|"
    r"alla i ddim siarad|bol nahi (?:sakti|sakta|sakte|pa rahi|pa raha)|baat nahi kar (?:sakti|"
    r"sakta)|awaaz nahi)\b|لا أستطيع (?:الكلام|التحدث)|بول نہیں سکتی|بول نہیں سکتا", re.I)

# A plea for help from the poster, in any supported language (with an address it is never
# "not an emergency": classify's rule R5).
PLEA = re.compile(
    r"\b(?:help|help me|help us|please help|pls help|plz help|sos|save me|save us|please come|"
    r"come quick|send (?:help|someone|police|an ambulance)|i'?m scared|ayuda|ayúdame|ayudenme|"
    r"socorro|auxilio|au secours|à l'aide|aidez-moi|hilfe|helft mir|aiuto|aiutatemi|ajuda|"
    r"me ajude|pomocy|ratunku|pomóżcie|helpwch|help fi|bachao|bachaao|madad|police bhejo|"
    r"ven(?:gan)? rápido|venez vite|kommen sie schnell|kommt schnell|venite presto|"
    r"venha(?:m)? rápido|przyjedźcie szybko|dewch yn gyflym|jaldi (?:aao|aaiye|ao))\b|"
    r"النجدة|ساعدوني|أنقذوني|مدد|بچاؤ", re.I)
# A street address: a number with a street word (English, Welsh, and the other supported
# languages' "street" before or after the number), or a UK postcode.
ADDRESS = re.compile(
    r"\b\d{1,4}[a-z]?,?\s+(?:[\w'-]+\s+){0,3}(?:st|street|rd|road|ave|avenue|lane|ln|close|"
    r"drive|dr|way|terrace|court|ct|grove|gardens|crescent|place|pl|square|sq|heol|stryd|ffordd|"
    r"lon|gali|mohalla|nagar|colony|marg|chowk)\b|"
    r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|allée|chemin|impasse|"
    r"place|quai|route)(?:\s+[\w'-]+){1,3}|"  # French: the number comes first ("3 rue Victor Hugo")
    r"\b(?:calle|avenida|rue|boulevard|via|viale|piazza|corso|rua|travessa|ulica|ul\.|al\.|"
    r"gali|mohalla|sector|house no\.?|flat no\.?|makan|heol|stryd)\s+[\w' -]{0,30}?\d{1,4}\b|"
    r"\b\w+(?:straße|strasse|str\.|weg|gasse|platz|allee|laan|straat|gracht)\s*\d{1,4}\b|"
    r"\b[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2}\b|شارع", re.I)
