"""Phrasings for the templated retrieval families, each split into a TRAIN and a HELD-OUT part.

Held-out templates, attributes and names never appear in training sequences; the evaluation's
"held-out phrasing" rows use only them. The public formats (passkey, RULER niah / vt,
InfiniteBench kv) are fixed strings in tasks.py and are trained as they are evaluated.

Placeholders: {s} subject, {S} subject with a capital first letter, {a} attribute, {ap} its
plural, {v} value, {x}/{y} variable names, {k} key.
"""

FIRST_NAMES_TRAIN = """
Alice Bruno Clara Dmitri Elena Farid Greta Hugo Ingrid Jonas Keiko Liam Mara Nikolai Olga Pedro
Quinn Rosa Samir Tanya Umar Vera Walter Xenia Yusuf Zora Aaron Beatrix Cyrus Daphne Emil Fiona
Gideon Helga Ivan Julia Kasper Lena Milo Nadia Oscar Petra Rafael Selma Tobias Ulla Victor Wanda
Arjun Bianca Conrad Delia Edgar Flora Gustav Hazel Isaac Juno Klaus Leona Marcus Nora Otto Priya
""".split()
FIRST_NAMES_HELDOUT = "Agatha Bertram Celeste Dorian Eloise Felix Gwendolyn Horace Imogen Jasper".split()
LAST_NAMES_TRAIN = """
Abbott Becker Castillo Dubois Eriksen Fischer Garcia Hoffmann Ivanova Jensen Kowalski Larsen
Moreau Novak Okafor Petrov Quintero Rossi Schmidt Tanaka Urban Vargas Weber Xu Yamamoto Zimmer
Andersen Baker Carter Dalton Ellis Foster Grant Hughes Irving Jordan Keller Lambert Mason Nash
Oakley Parker Reed Sutton Turner Vance Walsh Young Brennan Collins Doyle Fraser Gallagher Hale
""".split()
LAST_NAMES_HELDOUT = "Ashford Blackwood Crane Dunmore Everett Fairfax Greenleaf Holloway Ingram Jessop".split()

ADJECTIVES_TRAIN = """
red blue green yellow silver golden wooden iron ancient modern tiny huge quiet noisy northern
southern eastern western hidden broken shiny dusty frozen burning secret public private old new
small large heavy light dark bright round square narrow wide lucky crooked hollow velvet copper
""".split()
ADJECTIVES_HELDOUT = "amber marble crimson feathered mossy".split()
NOUNS_TRAIN = """
lantern bridge tower garden river castle harbor library engine violin compass mirror anchor
basket carriage clock desk drum falcon fountain gate hammer island kettle ladder lighthouse
market meadow mill orchard palace piano quarry raft saddle ship statue tunnel valley wagon well
window workshop barn cabin canal cellar chapel cottage dock farm forge kiosk lodge museum
""".split()
NOUNS_HELDOUT = "observatory greenhouse windmill aqueduct bakery".split()
PLACES_TRAIN = """
Avalon Brindle Corvale Dunhaven Elmsworth Fenwick Glenmoor Harrowgate Ironvale Juniper Kestrel
Lindenport Marrow Northwick Oakhurst Pemberly Quarrytown Ravenholm Stonebridge Thornbury
""".split()
PLACES_HELDOUT = "Willowmere Ashcombe Brackenridge Coldwater".split()

# (attribute, plural, value kinds) -- value kinds name generators in tasks.py.
ATTRIBUTES_TRAIN = [
    ("secret code", "secret codes", ("code", "number")),
    ("password", "passwords", ("word", "code")),
    ("favorite number", "favorite numbers", ("number",)),
    ("locker number", "locker numbers", ("number",)),
    ("access code", "access codes", ("code", "number")),
    ("lucky number", "lucky numbers", ("number",)),
    ("passphrase", "passphrases", ("word", "phrase")),
    ("serial number", "serial numbers", ("code", "uuid")),
    ("account number", "account numbers", ("number",)),
    ("reference id", "reference ids", ("uuid", "code")),
    ("PIN", "PINs", ("number",)),
    ("badge number", "badge numbers", ("number",)),
    ("tracking number", "tracking numbers", ("code", "number")),
    ("magic word", "magic words", ("word",)),
    ("codeword", "codewords", ("word",)),
    ("license key", "license keys", ("uuid", "code")),
    ("ticket number", "ticket numbers", ("number", "code")),
    ("phone extension", "phone extensions", ("number",)),
    ("room number", "room numbers", ("number",)),
    ("access token", "access tokens", ("uuid",)),
    ("special number", "special numbers", ("number",)),
    ("hidden word", "hidden words", ("word",)),
    ("order number", "order numbers", ("number", "code")),
    ("color", "colors", ("word",)),
    ("nickname", "nicknames", ("word",)),
]
ATTRIBUTES_HELDOUT = [
    ("vault combination", "vault combinations", ("number",)),
    ("launch code", "launch codes", ("code", "number")),
    ("membership number", "membership numbers", ("number",)),
    ("security token", "security tokens", ("uuid",)),
    ("confirmation word", "confirmation words", ("word",)),
    ("parcel id", "parcel ids", ("code", "uuid")),
]

NEEDLES_TRAIN = [
    "The {a} of {s} is {v}.",
    "{S}'s {a} is {v}.",
    "Remember: the {a} for {s} is {v}.",
    "Note that {s} has the {a} {v}.",
    "For the record, {s} uses {v} as the {a}.",
    "The {a} assigned to {s} is {v}.",
    "{S} was given the {a} {v}.",
    "Please keep in mind that the {a} belonging to {s} is {v}.",
    "It is recorded that {s} has the {a} {v}.",
    "{S}: {a} = {v}.",
    "Important: {s}'s {a} is {v}.",
    "In our files, the {a} listed for {s} is {v}.",
    "We were told that the {a} of {s} is {v}.",
    "The {a} used by {s} is {v}.",
    "{S} chose {v} as the {a}.",
    "According to the records, {s} has the {a} {v}.",
    "Write this down: {s}, {a}, {v}.",
    "The {a} that belongs to {s} is {v}.",
    "Do not forget that the {a} for {s} is {v}.",
    "{S} has {v} as the {a}.",
    "Officially, the {a} of {s} is {v}.",
    "The correct {a} for {s} is {v}.",
    "As of today, the {a} of {s} is {v}.",
    "One fact to remember: the {a} of {s} is {v}.",
    "[{s}] {a}: {v}.",
    "By the way, {s} picked {v} for the {a}.",
]
NEEDLES_HELDOUT = [
    "Keep this safe: {s} goes by the {a} {v}.",
    "The registry says that {s} holds the {a} {v}.",
    "Our notes show the {a} {v} for {s}.",
    "Listed under {s} is the {a} {v}.",
    "Memorize this: {s} has been issued the {a} {v}.",
    "The {a} on file for {s} reads {v}.",
]

# A question ends with the answer's lead-in; the value follows it after one space.
QUESTIONS_TRAIN = [
    "What is the {a} of {s}? The {a} of {s} is",
    "What is {s}'s {a}? {S}'s {a} is",
    "Question: What {a} does {s} have? Answer:",
    "Tell me the {a} for {s}. The {a} for {s} is",
    "Which {a} was assigned to {s}? The {a} assigned to {s} is",
    "Recall the {a} of {s}. It is",
    "What {a} is listed for {s}? The {a} listed for {s} is",
    "Q: {S}'s {a}? A:",
    "Do you remember the {a} of {s}? Yes, it is",
    "What was the {a} that belongs to {s}? It was",
    "Please state the {a} of {s}. The {a} of {s} is",
    "Find the {a} for {s} in the text above. The {a} for {s} is",
    "{S} forgot the {a}. What is it? The {a} of {s} is",
    "Based on the text, what is the {a} of {s}? Answer: The {a} of {s} is",
    "Look up the {a} of {s}. Result:",
    "Which {a} does {s} use? {S} uses",
    "What {a} did the text mention for {s}? The text mentioned",
    "Give the {a} of {s}. Answer:",
    "Query: {a} of {s}. Value:",
    "What is the value of the {a} for {s}? The value is",
    "Can you tell me {s}'s {a}? Sure, {s}'s {a} is",
    "Name the {a} of {s}. The {a} is",
    "I need the {a} of {s}. It is",
    "What {a} was mentioned for {s}? The {a} mentioned for {s} is",
]
QUESTIONS_HELDOUT = [
    "Could you remind me of {s}'s {a}? Of course: it is",
    "Which {a} goes with {s}? The one that goes with {s} is",
    "From the passage, retrieve the {a} of {s}. Retrieved value:",
    "What does the {a} of {s} say? It says",
    "Please recall {s}'s {a}. Recalled:",
    "Identify the {a} tied to {s}. The {a} tied to {s} is",
]

# Multi-value (one subject, several values) and multi-query (several subjects).
QUESTIONS_MULTI_VALUE_TRAIN = [
    "What are all the {ap} of {s}? The {ap} of {s} are",
    "List every {a} of {s}. The {ap} are",
    "Which {ap} belong to {s}? The {ap} that belong to {s} are",
    "Question: What {ap} does {s} have? Answer:",
    "Name all {ap} mentioned for {s}. They are",
    "Recall each {a} of {s}. They are",
    "What {ap} are recorded for {s}? The recorded {ap} are",
    "Give all of {s}'s {ap}. Answer:",
    "Tell me every {a} that {s} has. {S} has",
    "Which {ap} were listed for {s}? The listed {ap} are",
    "Find all {ap} of {s} in the text above. The {ap} of {s} are",
    "Q: all {ap} of {s}? A:",
]
QUESTIONS_MULTI_VALUE_HELDOUT = [
    "Enumerate the {ap} tied to {s}. The {ap} tied to {s} are",
    "Could you list {s}'s {ap}? Certainly: they are",
]
QUESTIONS_MULTI_QUERY_TRAIN = [
    "What are the {ap} of {s}? In order, they are",
    "Give the {a} of each of {s}. Answer:",
    "Tell me the {ap} for {s}. The {ap} are",
    "Question: what {ap} do {s} have? Answer:",
    "Recall the {ap} of {s}. They are",
    "List the {a} of {s}, in that order. The list is",
    "Which {ap} belong to {s}? In order:",
    "Q: {ap} of {s}? A:",
]
QUESTIONS_MULTI_QUERY_HELDOUT = [
    "Retrieve the {ap} for {s}, one each. Retrieved:",
    "For {s}, what are the {ap}? Respectively:",
]

# Variable tracking with varied phrasing. {x} is assigned; {v} a value, {y} another variable.
VT_ASSIGN_VALUE_TRAIN = [
    "Let {x} be {v}.", "Set {x} to {v}.", "{x} := {v}.", "The variable {x} holds {v}.",
    "Assign {v} to {x}.", "{x} equals {v}.", "We define {x} = {v}.", "Store {v} in {x}.",
    "{x} is initialised to {v}.", "{x} <- {v}.", "Put the number {v} into {x}.",
    "Initially {x} has the value {v}.",
]
VT_ASSIGN_VALUE_HELDOUT = ["Register {x} is loaded with {v}.", "Give {x} the value {v}."]
VT_ASSIGN_COPY_TRAIN = [
    "Let {x} be {y}.", "Set {x} to {y}.", "{x} := {y}.", "The variable {x} holds the value of {y}.",
    "Assign {y} to {x}.", "{x} equals {y}.", "We define {x} = {y}.", "Copy {y} into {x}.",
    "{x} is initialised from {y}.", "{x} <- {y}.", "Put the value of {y} into {x}.",
    "{x} takes whatever {y} holds.",
]
VT_ASSIGN_COPY_HELDOUT = ["Register {x} is loaded from {y}.", "Give {x} the value of {y}."]
VT_QUESTIONS_TRAIN = [
    "Which variables end up holding the value {v}? They are:",
    "Question: List all variables equal to {v}. Answer:",
    "Find every variable whose value is {v}. The variables are:",
    "Which names were assigned {v}, directly or through copies? Answer:",
    "Track the assignments. Which variables hold {v}? They are:",
    "Q: variables with value {v}? A:",
    "Follow the chain of assignments. Every variable equal to {v}:",
    "Name all variables that contain {v} in the end. They are:",
]
VT_QUESTIONS_HELDOUT = [
    "After all assignments, which variables store {v}? Stored in:",
    "Which variables did the value {v} reach? Reached:",
]

# Key-value lists: a line format per entry and the question that ends the episode.
KV_LINES_TRAIN = [
    "{k}: {v}", "{k} = {v}", "{k} -> {v}", "{k} => {v}", "| {k} | {v} |", "{k}\t{v}",
    "key {k}, value {v}", "\"{k}\": \"{v}\",", "{k} maps to {v}.", "{k} - {v}",
    "- {k}: {v}", "{k} ... {v}",
]
KV_LINES_HELDOUT = ["<{k}> {v}", "{k} ~ {v}"]
KV_QUESTIONS_TRAIN = [
    "What is the value for the key {k}? The value is",
    "Look up {k}. Value:",
    "Question: Which value does {k} map to? Answer:",
    "In the list above, {k} corresponds to",
    "Find the entry for {k}. Its value is",
    "What does {k} map to? It maps to",
    "Q: value of {k}? A:",
    "Return the value stored under {k}. Stored value:",
]
KV_QUESTIONS_HELDOUT = [
    "Which value was paired with {k}? Paired value:",
    "Read off the value next to {k}. It reads",
]

# Optional instruction lines that open an episode (chosen at random, or none).
INSTRUCTIONS_TRAIN = [
    "", "Read the following text carefully. A question follows it.",
    "Some important facts are hidden in the text below. Remember them.",
    "Below is a long document. Answer the question at the end.",
    "Memorize the details in this text; you will be asked about them.",
    "The following notes contain several facts.",
]
INSTRUCTIONS_HELDOUT = ["", "A question about the text below comes at its end."]

# Questions without their lead-in, and lead-ins on their own: training also joins a random
# form with a random lead-in, so the answer does not hinge on one fixed wording.
QUESTION_FORMS_TRAIN = [
    "What is the {a} of {s}?", "What is {s}'s {a}?", "Which {a} does {s} have?",
    "Tell me the {a} for {s}.", "Which {a} was assigned to {s}?", "Recall the {a} of {s}.",
    "What {a} is listed for {s}?", "Do you remember the {a} of {s}?", "Please state the {a} of {s}.",
    "Find the {a} for {s} in the text above.", "What was the {a} that belongs to {s}?",
    "Look up the {a} of {s}.", "Give the {a} of {s}.", "I need the {a} of {s}.",
    "What {a} was mentioned for {s}?", "Name the {a} of {s}.", "Which {a} does {s} use?",
    "Can you tell me {s}'s {a}?", "Report the {a} of {s}.", "What {a} belongs to {s}?",
    "Search the text for the {a} of {s}.", "Question: the {a} of {s}?", "{S}'s {a}?",
    "What did the text say the {a} of {s} was?",
]
LEADINS_TRAIN = [
    "Answer:", "The answer is", "It is", "It was", "Value:", "Result:", "The {a} is",
    "The {a} of {s} is", "{S}'s {a} is", "Sure, it is", "A:", "Response:", "Found:",
    "According to the text, it is", "That would be", "The text says", "The requested {a} is",
    "Here it is:", "Output:", "The value is",
]

# More variety for training only (added for the second training call): extra attributes, names,
# needle shapes with the value first or in the middle, and free prefixes for needles/questions.
ATTRIBUTES_TRAIN += [
    ("gate code", "gate codes", ("number", "code")), ("voucher code", "voucher codes", ("code",)),
    ("booking reference", "booking references", ("code", "uuid")), ("secret number", "secret numbers", ("number",)),
    ("favorite word", "favorite words", ("word",)), ("safe word", "safe words", ("word",)),
    ("radio frequency", "radio frequencies", ("number",)), ("employee number", "employee numbers", ("number",)),
    ("case number", "case numbers", ("number", "code")), ("batch code", "batch codes", ("code",)),
    ("seat number", "seat numbers", ("number",)), ("door code", "door codes", ("number", "code")),
    ("wifi password", "wifi passwords", ("word", "phrase")), ("recovery code", "recovery codes", ("code", "uuid")),
    ("invoice number", "invoice numbers", ("number",)), ("code name", "code names", ("word", "phrase")),
    ("session id", "session ids", ("uuid",)), ("zip code", "zip codes", ("number",)),
    ("signal word", "signal words", ("word",)), ("shelf number", "shelf numbers", ("number",)),
]
FIRST_NAMES_TRAIN += """
Adele Boris Camille Dario Esther Fabian Gloria Henrik Iris Joaquin Katya Lorenzo Mina Nils Odette
Pavel Rhea Stefan Thea Ugo Valentina Wilhelm Yara Zeno Anika Bastian Cora Dev Elif Frida
""".split()
LAST_NAMES_TRAIN += """
Alvarez Bauer Chen Dietrich Engel Ferrari Gomez Horvat Iqbal Jovanovic Kim Lopez Meyer Nakamura
Ortiz Popescu Quinn Rahman Silva Tran Ueda Volkov Wagner Yilmaz Zhou Berg Costa Duarte Eklund Fontaine
""".split()
NEEDLES_TRAIN += [
    "{v} is the {a} of {s}.",
    "{v} - that is the {a} of {s}.",
    "{v}: the {a} for {s}.",
    "The number to remember is the {a} of {s}, which is {v}.",
    "{S} set the {a} to {v}.",
    "When asked, {s} gave {v} as the {a}.",
    "The {a} {v} belongs to {s}.",
    "{S} (the {a} is {v}) arrived later.",
    "About {s}: the {a} is {v}, in case anyone asks.",
    "Entry for {s}. {a}: {v}.",
    "{S} keeps the {a} {v}.",
    "Everyone knows the {a} of {s} is {v}.",
    "Then {s} said the {a} was {v}.",
    "It turned out that the {a} for {s} was {v}.",
]
NEEDLE_PREFIXES_TRAIN = [
    "Note:", "By the way,", "FYI:", "Incidentally,", "Attention:", "For reference,", "Memo:",
    "Heads up:", "PS:", "Update:", "Reminder:", "Fact:", "Also,", "Meanwhile,", "Record:",
    "Log entry:", "Aside:", "Hint:", "Notice:", "Note to self:",
]
QUESTION_FORMS_TRAIN += [
    "Which {a} appears next to {s}?", "What {a} goes along with {s}?", "Which {a} is linked to {s}?",
    "What is the {a} attached to {s}?", "Tell me which {a} {s} has.", "Read back the {a} of {s}.",
    "What {a} was recorded for {s}?", "Print the {a} of {s}.", "Quick question: {s}'s {a}?",
    "Which value is the {a} of {s}?", "And the {a} of {s}?",
]
LEADINS_TRAIN += [
    "The {a} for {s} is", "Answer: it is", "Definitely", "I believe it is", "Correct answer:",
    "Easy:", "Without doubt it is", "My answer is", "The text gives", "Reply:", "Solution:",
    "It should be", "That is", "Clearly", "Final answer:", "The stored value is", "We have",
    "Checking the text, it is", "Got it:", "Value found:",
]
QUESTION_PREFIXES_TRAIN = ["", "", "", "Now a question.", "Final question.", "OK.", "Next:", "Quiz:",
                           "Answer briefly.", "One question about the text."]
