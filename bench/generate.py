"""Synthetic French intelligence records, deterministic for a seed.

`Generator(seed, records).filings()` yields `Filing`s in filing order: a body in the shape
of `POST /api/v1/records` (RecordCreate), the CROSS unit it is filed in, its filing time,
and the selectors and entity names the app would derive from it (computed here directly,
in the app's normalised forms; `bench.load.check_against_app` verifies a sample).

What it looks like:
- units: mostly CROSS-13, CROSS-83 and CROSS-59, then CROSS-06, -75, -69 and -33; the
  commune is one of about 210 real communes of the unit's département (10 % elsewhere);
- people drawn from pools of French surnames and given names, who recur across records, as
  do their phones (+336/+337 mobiles, valid for phonenumbers), plates (SIV AB-123-CD, some
  Spanish and Belgian), IBANs (French with a correct RIB key, some Spanish and German;
  ISO 7064 check digits) and containers (ISO 6346 check digit);
- narratives in the vocabulary of the trade (point de deal, chouf, charbonneur, nourrice,
  go-fast, ouvreuse, convoi, saisie, mule…): "cannabis" and "point de deal" are common
  (each in well over 10 % of records), "captagon" is rare (about 1 record in 5,000), and
  commune names are frequent in their own unit's records and rare elsewhere;
- drug types from the EUDA list; scope mostly `unit`, handling mostly `H0`, marking mostly
  `NP`, Europol grading mostly B/C 2/3.
"""

import bisect
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import phonenumbers
from stdnum import iso6346
from stdnum.es import ccc
from stdnum.iso7064 import mod_97_10

from app.services.entities import person_name

END = datetime(2026, 11, 1, tzinfo=UTC)
"""Filing times of generated records run up to this instant, over SPAN."""
SPAN = timedelta(days=3 * 365)
RARE_TERM = "captagon"
COMMON_TERM = "cannabis"
CLUSTERED_TERM = "Maubeuge"
"""A Nord commune: in about 0.4 % of records, mostly CROSS-59's, few of which a CROSS-13
officer may see (the trap for a plan that walks records newest first)."""

UNIT_WEIGHTS = {
    "CROSS-13": 35, "CROSS-83": 15, "CROSS-59": 15, "CROSS-06": 9, "CROSS-75": 9,
    "CROSS-69": 9, "CROSS-33": 8,
}

# département -> communes (name, latitude, longitude), most populous first.
COMMUNES: dict[str, tuple[tuple[str, float, float], ...]] = {
    "13": (
        ("Marseille", 43.2965, 5.3698), ("Aix-en-Provence", 43.5297, 5.4474),
        ("Arles", 43.6766, 4.6278), ("Martigues", 43.4045, 5.0476),
        ("Aubagne", 43.2927, 5.5708), ("Istres", 43.5130, 4.9876),
        ("Salon-de-Provence", 43.6403, 5.0972), ("Vitrolles", 43.4600, 5.2486),
        ("Marignane", 43.4160, 5.2145), ("La Ciotat", 43.1748, 5.6046),
        ("Miramas", 43.5845, 5.0023), ("Gardanne", 43.4548, 5.4692),
        ("Les Pennes-Mirabeau", 43.4105, 5.3089), ("Châteaurenard", 43.8826, 4.8550),
        ("Tarascon", 43.8058, 4.6603), ("Port-de-Bouc", 43.4050, 4.9886),
        ("Fos-sur-Mer", 43.4380, 4.9446), ("Berre-l'Étang", 43.4770, 5.1686),
        ("Septèmes-les-Vallons", 43.3992, 5.3653), ("Allauch", 43.3369, 5.4822),
        ("Plan-de-Cuques", 43.3475, 5.4636), ("Gémenos", 43.2952, 5.6286),
        ("Cassis", 43.2147, 5.5385), ("Rognac", 43.4875, 5.2336),
        ("Saint-Martin-de-Crau", 43.6396, 4.8126), ("Trets", 43.4475, 5.6844),
        ("Bouc-Bel-Air", 43.4522, 5.4139), ("Cabriès", 43.4417, 5.3800),
        ("Pélissanne", 43.6322, 5.1511), ("Lançon-Provence", 43.5917, 5.1281),
        ("Saint-Rémy-de-Provence", 43.7885, 4.8317), ("Eyguières", 43.6947, 5.0311),
        ("Sénas", 43.7447, 5.0783), ("Rousset", 43.4828, 5.6197),
        ("Peyrolles-en-Provence", 43.6458, 5.5842), ("Saintes-Maries-de-la-Mer", 43.4522, 4.4286),
        ("Carry-le-Rouet", 43.3314, 5.1522), ("Sausset-les-Pins", 43.3311, 5.1097),
        ("Ensuès-la-Redonne", 43.3556, 5.2022), ("Châteauneuf-les-Martigues", 43.3831, 5.1636),
        ("Gignac-la-Nerthe", 43.3917, 5.2361), ("Auriol", 43.3700, 5.6344),
        ("Roquevaire", 43.3500, 5.6044), ("La Penne-sur-Huveaune", 43.2828, 5.5150),
        ("Simiane-Collongue", 43.4303, 5.4339), ("Fuveau", 43.4528, 5.5617),
        ("Meyreuil", 43.4872, 5.4956), ("Velaux", 43.5233, 5.2539), ("Noves", 43.8772, 4.9022),
    ),
    "83": (
        ("Toulon", 43.1242, 5.9280), ("La Seyne-sur-Mer", 43.1007, 5.8788),
        ("Hyères", 43.1204, 6.1286), ("Fréjus", 43.4332, 6.7370),
        ("Draguignan", 43.5366, 6.4646), ("Saint-Raphaël", 43.4253, 6.7684),
        ("Six-Fours-les-Plages", 43.0939, 5.8394), ("La Garde", 43.1244, 6.0108),
        ("Brignoles", 43.4058, 6.0614), ("La Valette-du-Var", 43.1376, 5.9832),
        ("Sanary-sur-Mer", 43.1192, 5.8010), ("Saint-Maximin-la-Sainte-Baume", 43.4528, 5.8617),
        ("Sainte-Maxime", 43.3090, 6.6370), ("Le Pradet", 43.1056, 6.0239),
        ("La Crau", 43.1497, 6.0736), ("Ollioules", 43.1397, 5.8475),
        ("Le Luc", 43.3947, 6.3128), ("Vidauban", 43.4272, 6.4319),
        ("Le Muy", 43.4725, 6.5664), ("Puget-sur-Argens", 43.4553, 6.6853),
        ("Roquebrune-sur-Argens", 43.4431, 6.6386), ("Cogolin", 43.2525, 6.5300),
        ("Saint-Tropez", 43.2727, 6.6406), ("Bandol", 43.1364, 5.7528),
        ("Solliès-Pont", 43.1906, 6.0411), ("Cuers", 43.2372, 6.0711),
        ("Lorgues", 43.4936, 6.3614), ("Le Beausset", 43.1983, 5.8033),
        ("Carqueiranne", 43.0950, 6.0736), ("Saint-Cyr-sur-Mer", 43.1817, 5.7086),
        ("Bormes-les-Mimosas", 43.1506, 6.3422),
    ),
    "59": (
        ("Lille", 50.6292, 3.0573), ("Roubaix", 50.6942, 3.1746),
        ("Tourcoing", 50.7239, 3.1612), ("Dunkerque", 51.0344, 2.3768),
        ("Villeneuve-d'Ascq", 50.6233, 3.1450), ("Valenciennes", 50.3570, 3.5235),
        ("Douai", 50.3714, 3.0800), ("Wattrelos", 50.7010, 3.2170),
        ("Marcq-en-Barœul", 50.6711, 3.0972), ("Cambrai", 50.1760, 3.2346),
        ("Maubeuge", 50.2775, 3.9734), ("Lambersart", 50.6500, 3.0250),
        ("Armentières", 50.6881, 2.8806), ("Loos", 50.6128, 3.0144),
        ("Grande-Synthe", 51.0139, 2.3028), ("Croix", 50.6783, 3.1525),
        ("Hazebrouck", 50.7250, 2.5394), ("Wasquehal", 50.6703, 3.1308),
        ("Hem", 50.6553, 3.1878), ("Halluin", 50.7836, 3.1256),
        ("Denain", 50.3294, 3.3958), ("Lomme", 50.6456, 2.9872),
        ("Mons-en-Barœul", 50.6411, 3.1100), ("La Madeleine", 50.6553, 3.0714),
        ("Wattignies", 50.5858, 3.0436), ("Seclin", 50.5489, 3.0297),
        ("Anzin", 50.3722, 3.5050), ("Saint-Amand-les-Eaux", 50.4478, 3.4272),
        ("Caudry", 50.1250, 3.4122), ("Coudekerque-Branche", 51.0228, 2.3931),
        ("Faches-Thumesnil", 50.5900, 3.0739), ("Ronchin", 50.6050, 3.0897),
        ("Bailleul", 50.7392, 2.7353), ("Fourmies", 50.0147, 4.0531),
        ("Sin-le-Noble", 50.3614, 3.1311), ("Onnaing", 50.3886, 3.5978),
    ),
    "06": (
        ("Nice", 43.7102, 7.2620), ("Antibes", 43.5808, 7.1251), ("Cannes", 43.5528, 7.0174),
        ("Grasse", 43.6589, 6.9239), ("Cagnes-sur-Mer", 43.6637, 7.1489),
        ("Le Cannet", 43.5769, 7.0194), ("Saint-Laurent-du-Var", 43.6730, 7.1900),
        ("Menton", 43.7747, 7.4975), ("Vallauris", 43.5781, 7.0536),
        ("Mandelieu-la-Napoule", 43.5464, 6.9381), ("Vence", 43.7225, 7.1119),
        ("Carros", 43.7886, 7.1856), ("Villeneuve-Loubet", 43.6583, 7.1222),
        ("Mougins", 43.6000, 6.9950), ("Roquebrune-Cap-Martin", 43.7600, 7.4600),
        ("Beausoleil", 43.7425, 7.4225), ("La Trinité", 43.7419, 7.3142),
        ("Contes", 43.8128, 7.3147), ("Valbonne", 43.6411, 7.0089), ("Biot", 43.6278, 7.0958),
        ("Cap-d'Ail", 43.7214, 7.4050), ("Saint-Jeannet", 43.7478, 7.1428),
        ("Pégomas", 43.5967, 6.9325), ("La Colle-sur-Loup", 43.6864, 7.1036),
        ("Villefranche-sur-Mer", 43.7042, 7.3117),
    ),
    "75": (
        ("Paris 18e Arrondissement", 48.8925, 2.3486),
        ("Paris 19e Arrondissement", 48.8871, 2.3848),
        ("Paris 20e Arrondissement", 48.8634, 2.4012),
        ("Paris 10e Arrondissement", 48.8761, 2.3608),
        ("Paris 17e Arrondissement", 48.8874, 2.3067),
        ("Paris 13e Arrondissement", 48.8283, 2.3623),
        ("Paris 11e Arrondissement", 48.8590, 2.3800),
        ("Paris 12e Arrondissement", 48.8350, 2.4213),
        ("Paris 15e Arrondissement", 48.8402, 2.2930),
        ("Paris 14e Arrondissement", 48.8292, 2.3265),
        ("Paris 9e Arrondissement", 48.8770, 2.3375), ("Paris 16e Arrondissement", 48.8604, 2.2620),
        ("Paris 3e Arrondissement", 48.8630, 2.3600), ("Paris 2e Arrondissement", 48.8683, 2.3428),
        ("Paris 8e Arrondissement", 48.8727, 2.3125), ("Paris 5e Arrondissement", 48.8445, 2.3497),
        ("Paris 4e Arrondissement", 48.8543, 2.3576), ("Paris 6e Arrondissement", 48.8491, 2.3328),
        ("Paris 7e Arrondissement", 48.8562, 2.3122), ("Paris 1er Arrondissement", 48.8625, 2.3364),
    ),
    "69": (
        ("Lyon", 45.7640, 4.8357), ("Villeurbanne", 45.7719, 4.8902),
        ("Vénissieux", 45.6975, 4.8867), ("Vaulx-en-Velin", 45.7786, 4.9203),
        ("Saint-Priest", 45.6964, 4.9442), ("Caluire-et-Cuire", 45.7953, 4.8464),
        ("Bron", 45.7386, 4.9131), ("Rillieux-la-Pape", 45.8214, 4.8983),
        ("Villefranche-sur-Saône", 45.9897, 4.7186), ("Meyzieu", 45.7667, 5.0036),
        ("Oullins", 45.7144, 4.8075), ("Décines-Charpieu", 45.7689, 4.9589),
        ("Givors", 45.5906, 4.7689), ("Sainte-Foy-lès-Lyon", 45.7336, 4.8025),
        ("Saint-Genis-Laval", 45.6953, 4.7931), ("Écully", 45.7744, 4.7775),
        ("Tassin-la-Demi-Lune", 45.7636, 4.7550), ("Mions", 45.6631, 4.9539),
        ("Saint-Fons", 45.7086, 4.8533), ("Corbas", 45.6681, 4.9019),
        ("Francheville", 45.7364, 4.7636), ("Genas", 45.7314, 5.0019),
        ("Chassieu", 45.7381, 4.9664), ("Tarare", 45.8961, 4.4333),
        ("Neuville-sur-Saône", 45.8764, 4.8411), ("Pierre-Bénite", 45.7036, 4.8244),
    ),
    "33": (
        ("Bordeaux", 44.8378, -0.5792), ("Mérignac", 44.8386, -0.6436),
        ("Pessac", 44.8067, -0.6311), ("Talence", 44.8089, -0.5886),
        ("Villenave-d'Ornon", 44.7806, -0.5658), ("Saint-Médard-en-Jalles", 44.8964, -0.7164),
        ("Bègles", 44.8086, -0.5478), ("La Teste-de-Buch", 44.6311, -1.1453),
        ("Le Bouscat", 44.8658, -0.5994), ("Gradignan", 44.7725, -0.6156),
        ("Libourne", 44.9153, -0.2439), ("Cenon", 44.8578, -0.5317),
        ("Lormont", 44.8792, -0.5217), ("Eysines", 44.8836, -0.6500),
        ("Bruges", 44.8836, -0.6114), ("Floirac", 44.8375, -0.5239),
        ("Blanquefort", 44.9106, -0.6367), ("Arcachon", 44.6586, -1.1689),
        ("Gujan-Mestras", 44.6358, -1.0672), ("Le Haillan", 44.8731, -0.6769),
        ("Cestas", 44.7428, -0.6817), ("Ambarès-et-Lagrave", 44.9253, -0.4858),
        ("Andernos-les-Bains", 44.7453, -1.1011), ("Biganos", 44.6447, -0.9783),
        ("Bassens", 44.9017, -0.5164), ("Lège-Cap-Ferret", 44.7950, -1.1464),
        ("Saint-André-de-Cubzac", 45.0053, -0.4461), ("Langon", 44.5531, -0.2492),
    ),
}

ROADS = {
    "13": ("l'A7", "l'A8", "l'A55", "l'A50", "l'A51", "l'A54"),
    "83": ("l'A8", "l'A50", "l'A57", "la RDN7"),
    "59": ("l'A1", "l'A22", "l'A25", "l'A23", "l'A2", "l'A16"),
    "06": ("l'A8", "la RN202", "la promenade des Anglais"),
    "75": ("le boulevard périphérique", "l'A1", "l'A4", "l'A3"),
    "69": ("l'A7", "l'A6", "l'A43", "l'A46", "l'A42"),
    "33": ("l'A10", "l'A63", "l'A62", "l'A89", "la rocade bordelaise"),
}
TOLLS = ("Lançon", "La Barque", "Le Boulou", "Vienne", "Saint-Arnoult", "Fresnes-lès-Montauban",
         "Biriatou", "Saint-Selve", "Villefranche-Limas", "Antibes")
PORTS = ("Marseille-Fos", "Le Havre", "Dunkerque", "Toulon", "Nice", "Bordeaux")
ORIGINS = ("Guayaquil (Équateur)", "Santos (Brésil)", "Kingston (Jamaïque)", "Cartagena (Colombie)",
           "Punta Caucedo (République dominicaine)", "Tanger Med (Maroc)", "Algésiras (Espagne)")
CITES = ("des Tilleuls", "des Lauriers", "des Oliviers", "du Mail", "des Pins", "de la Roseraie",
         "des Cèdres", "Bellevue", "des Marronniers", "Val-Fleuri", "de la Source", "des Bleuets",
         "des Hirondelles", "des Peupliers", "du Moulin", "des Acacias", "Beausoleil",
         "des Amandiers", "de la Pinède", "des Genêts", "du Château-Rouge", "des Platanes")
MODELS = ("Audi RS6", "Audi RS3", "BMW série 5", "BMW X5", "Mercedes classe E", "Mercedes Vito",
          "Renault Mégane RS", "Peugeot 308", "Peugeot 5008", "Volkswagen Golf GTI",
          "Seat Leon Cupra", "Range Rover Sport", "Porsche Cayenne", "Renault Clio",
          "Citroën Berlingo", "Renault Master", "Ford Transit", "Fiat Ducato", "Yamaha T-Max",
          "Skoda Octavia RS", "Toyota RAV4")
SOURCES = ("humaine fiable", "anonyme", "non éprouvée", "récemment recrutée", "bien placée",
           "proche du réseau")
CLOSERS = ("Surveillance à poursuivre.", "Recoupement demandé auprès de l'OFAST.",
           "Informations à recouper avec les fichiers de police et de gendarmerie.",
           "Le renseignement reste à confirmer.", "Source à réévaluer.",
           "Transmis au parquet pour information.", "Une enquête préliminaire est envisagée.")

SURNAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Lefèvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
    "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clément",
    "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand", "Duval",
    "Denis", "Dumont", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier", "Brun", "Blanchard",
    "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud", "Martinez",
    "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal", "Caron", "Picard",
    "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix", "Olivier", "Philippe",
    "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc", "Payet", "Rolland", "Leclercq",
    "Guillaume", "Lecomte", "Lopez", "Dupuy", "Guillot", "Hubert", "Berger", "Carpentier",
    "Sanchez", "Dupuis", "Moulin", "Deschamps", "Huet", "Vasseur", "Perez", "Boucher", "Fleury",
    "Royer", "Klein", "Jacquet", "Adam", "Poirier", "Marty", "Aubry", "Guyot", "Carré",
    "Charpentier", "Ménard", "Maillard", "Baron", "Bertin", "Bailly", "Hervé", "Schneider",
    "Fernandez", "Le Gall", "Collet", "Léger", "Bouvier", "Prévost", "Millet", "Perrot",
    "Le Roux", "Cousin", "Germain", "Breton", "Besson", "Langlois", "Rémy", "Le Goff",
    "Pelletier", "Lévêque", "Perrier", "Leblanc", "Barré", "Lebrun", "Weber", "Hamon",
    "Boulanger", "Jacob", "Monnier", "Michaud", "Rodriguez", "Guichard", "Étienne", "Grondin",
    "Tessier", "Chauvin", "Da Silva", "Bouchet", "Lemaître", "Bénard", "Gomez", "Benali",
    "Haddad", "Bouaziz", "Mansouri", "Belkacem", "Saïdi", "Hamidi", "Cherif", "Rahmani",
    "Boukhari", "Brahimi", "Amrani", "Ziani", "Kaci", "Meziane", "Touati", "Diallo", "Traoré",
    "Camara", "Diop", "Ndiaye", "Sow", "Koné", "Cissé", "Kaya", "Öztürk", "Ferreira",
    "Dos Santos", "Pereira", "Rodrigues", "Gonçalves", "Lopes", "Santoni", "Pieri", "Casanova",
)
GIVEN_NAMES = (
    "Jean", "Pierre", "Michel", "Philippe", "Alain", "Nicolas", "Christophe", "Julien", "Thomas",
    "Kevin", "Mehdi", "Karim", "Sofiane", "Yassine", "Nabil", "Bilal", "Rayan", "Ilyès", "Anis",
    "Samir", "Mohamed", "Ahmed", "Youssef", "Moussa", "Mamadou", "Ibrahim", "Lucas", "Hugo",
    "Enzo", "Théo", "Maxime", "Alexandre", "Antoine", "Romain", "Jérémy", "Anthony", "Dylan",
    "Jordan", "Steven", "Loïc", "Mickaël", "Sébastien", "Frédéric", "Stéphane", "Cédric",
    "Grégory", "Florian", "Quentin", "Clément", "Baptiste", "Adrien", "Valentin", "José",
    "Manuel", "Marie", "Nathalie", "Isabelle", "Sandrine", "Céline", "Julie", "Laura", "Sarah",
    "Inès", "Yasmine", "Sonia", "Nadia", "Fatima", "Amel", "Léa", "Chloé", "Camille", "Manon",
    "Océane", "Jessica", "Mélissa", "Aurélie", "Émilie", "Audrey", "Élodie", "Samia", "Leïla",
    "Jean-Pierre", "Jean-Luc", "Marie-Claire", "Anne-Sophie", "Jean-Baptiste",
)
ALIASES = ("le Gros", "Bibi", "le Grec", "Nono", "Tonton", "Mimi", "Zizou", "Momo", "Kiki",
           "le Blond", "le Boss", "Pitbull", "la Fouine", "Babar", "Titi", "le Marseillais",
           "Doudou", "Jojo", "le Petit", "Chacal", "Tito", "le Rouquin")
NATIONALITIES = ("FR", "FR", "FR", "MA", "DZ", "TN", "ES", "PT", "SN", "ML", "NL", "BE", "AL")

# EUDA drug type -> (weight, [(phrase, phrase after "de"), …], quantity kind)
DRUGS: dict[str, tuple[int, tuple[tuple[str, str], ...], str]] = {
    "cannabis_resin": (33, (("résine de cannabis", "de résine de cannabis"),
                            ("plaquettes de résine", "de plaquettes de résine"),
                            ("savonnettes de résine", "de savonnettes de résine"),
                            ("shit", "de shit"), ("haschich", "de haschich")), "kg"),
    "herbal_cannabis": (24, (("herbe de cannabis", "d'herbe de cannabis"),
                             ("têtes de cannabis", "de têtes de cannabis"), ("beuh", "de beuh"),
                             ("herbe", "d'herbe")), "kg"),
    "cannabis_plants": (2, (("plants de cannabis", "de plants de cannabis"),), "plants"),
    "cocaine": (24, (("cocaïne", "de cocaïne"), ("pains de cocaïne", "de pains de cocaïne"),
                     ("coke", "de coke"), ("cocaïne en pochons", "de cocaïne en pochons")), "kg"),
    "crack": (4, (("crack", "de crack"), ("galettes de crack", "de galettes de crack")), "doses"),
    "heroin": (4, (("héroïne", "d'héroïne"), ("héroïne brune", "d'héroïne brune"),
                   ("rabla", "de rabla")), "kg"),
    "amphetamine": (1, (("amphétamine", "d'amphétamine"), ("speed", "de speed")), "kg"),
    "methamphetamine": (1, (("méthamphétamine", "de méthamphétamine"),
                            ("crystal meth", "de crystal meth")), "kg"),
    "mdma": (3, (("MDMA", "de MDMA"), ("ecstasy", "d'ecstasy")), "tablets"),
    "synthetic_cathinones_nps": (2, (("3-MMC", "de 3-MMC"), ("cathinones de synthèse",
                                                             "de cathinones de synthèse")), "kg"),
    "other": (2, (("kétamine", "de kétamine"), ("prégabaline", "de prégabaline"),
                  ("protoxyde d'azote", "de protoxyde d'azote")), "kg"),
}

# topic -> (weight, title templates, sentence templates, tag, drug types it leans to)
TOPICS: dict[str, tuple[int, tuple[str, ...], tuple[str, ...], str, tuple[str, ...]]] = {
    "deal": (30, ("Point de deal cité {cite} — {commune}", "Point de deal actif à {commune}",
                  "Trafic {de_drug} au point de deal de la cité {cite}"),
             ("Le point de deal de la cité {cite} est actif de {h1} h à {h2} h, avec au moins "
              "{n} guetteurs (choufs) postés aux entrées.",
              "La vente {de_drug} se fait au pied des bâtiments par des charbonneurs ; les "
              "tarifs circulent sur les réseaux sociaux ({price} euros la barrette).",
              "Le point de deal serait ravitaillé deux fois par semaine par {person}.",
              "Un guetteur mineur serait rémunéré {price} euros par jour par le réseau.",
              "Des rixes entre équipes rivales ont été signalées près du point de deal."),
             "point-de-deal", ("cannabis_resin", "herbal_cannabis", "cocaine", "crack")),
    "gofast": (12, ("Go-fast sur {road}", "Convoi suspect sur {road} — {commune}",
                    "Go-fast en provenance d'Espagne ({commune})"),
               ("Un go-fast composé d'une voiture ouvreuse et d'un {model} chargé remonterait "
                "{road} depuis l'Espagne.",
                "Le convoi aurait franchi le péage de {toll} vers {hour}, chargé de {qty} "
                "{de_drug}.",
                "La voiture ouvreuse signale les contrôles par téléphone au reste du convoi.",
                "Un go-slow (camping-car) emprunterait le même itinéraire le week-end."),
               "go-fast", ("cannabis_resin", "cocaine", "herbal_cannabis")),
    "nourrice": (10, ("Nourrice identifiée à {commune}", "Appartement nourrice cité {cite}"),
                 ("Une nourrice stockerait {qty} {de_drug} dans un appartement de la cité "
                  "{cite}, moyennant {price} euros par mois.",
                  "L'appartement de la nourrice sert aussi au conditionnement en pochons.",
                  "{person} passerait récupérer la marchandise chez la nourrice en soirée."),
                 "nourrice", ("cannabis_resin", "herbal_cannabis", "cocaine")),
    "seizure": (15, ("Saisie {de_drug} à {commune}", "Saisie sur contrôle routier — {commune}"),
                ("Une saisie de {qty} {de_drug} a été réalisée lors d'un contrôle routier à "
                 "{commune}.",
                 "La saisie comprend également {cash} euros en numéraire et deux téléphones.",
                 "Le conducteur, {person}, a été placé en garde à vue.",
                 "La marchandise était dissimulée dans un double fond du coffre."),
                "saisie", tuple(DRUGS)),
    "port": (5, ("Conteneur suspect au port de {port}", "Fret maritime — port de {port}"),
             ("Un conteneur en provenance de {origin} débarqué au port de {port} pourrait "
              "dissimuler {qty} {de_drug}.",
              "Des dockers seraient rémunérés {cash} euros pour sortir le conteneur avant "
              "contrôle.",
              "La méthode du rip-off (sac à l'intérieur du conteneur) est suspectée."),
             "port", ("cocaine",)),
    "mule": (3, ("Mules en provenance de Guyane — {commune}", "Passeurs in corpore"),
             ("Une mule en provenance de Cayenne transporterait des boulettes de cocaïne par "
              "ingestion.",
              "Les mules seraient recrutées sur les réseaux sociaux et hébergées à {commune}."),
             "mule", ("cocaine",)),
    "money": (5, ("Blanchiment des produits du trafic — {commune}", "Flux financiers suspects"),
              ("Les fonds seraient blanchis via des commerces de façade (snack, barbier, "
               "location de véhicules) à {commune}.",
               "Des dépôts d'espèces fractionnés de {cash} euros sont relevés chaque semaine.",
               "Une partie des gains serait convertie en cryptoactifs."),
              "blanchiment", ("cannabis_resin", "cocaine")),
    "drone": (2, ("Livraisons par drone — {commune}",),
              ("Des livraisons par drone au centre pénitentiaire voisin ont été signalées de nuit.",
               "Les colis contiendraient des téléphones et des stupéfiants ({drug})."),
              "drone", ("cannabis_resin", "herbal_cannabis")),
    "intel": (18, ("Renseignement sur {person}", "Renseignement trafic {de_drug} — {commune}",
                   "Filière {de_drug} à {commune}"),
              ("{person} serait impliqué dans un trafic {de_drug} sur le secteur de {commune}.",
               "Il se fournirait auprès d'un grossiste installé aux Pays-Bas.",
               "Des allers-retours fréquents vers l'Espagne sont signalés.",
               "Il organiserait l'approvisionnement par livraisons à domicile (« uber shit »)."),
              "renseignement", tuple(DRUGS)),
}
OPENERS = (
    "Selon une source {source}, un trafic {de_drug} est actif à {commune}.",
    "Le {day}, vers {hour}, une surveillance a été mise en place à {commune}.",
    "Renseignement recueilli auprès d'une source {source} sur le secteur de {commune}.",
    "Des habitants de la cité {cite} à {commune} signalent des allées et venues suspectes.",
    "Information transmise par un service partenaire au sujet d'un réseau {de_drug}.",
)
PHONE_SENTENCES = ("{person} utilise la ligne {phone}, activée il y a {n} semaines.",
                   "La ligne {phone} a déclenché des relais à proximité du point de vente.")
VEHICLE_SENTENCE = ("Le véhicule {model} immatriculé {plate} a été vu à plusieurs reprises "
                    "devant le domicile de {person}.")
IBAN_SENTENCE = "Des virements vers le compte {iban} ont été relevés."
CONTAINER_SENTENCE = "Le conteneur {container} est signalé pour contrôle."
RARE_SENTENCE = "Des comprimés de captagon auraient aussi été proposés à la revente."
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")
EXTRA_TAGS = ("prioritaire", "a-recouper", "source-humaine", "frontiere", "reseaux-sociaux",
              "mineurs")
KILOS = ("200 g", "500 g", "1 kg", "2 kg", "3 kg", "5 kg", "8 kg", "12 kg", "25 kg", "40 kg",
         "80 kg", "150 kg", "300 kg", "700 kg", "1,2 tonne")
H3_NOTES = ("Ne pas exploiter avant l'accord du magistrat saisi.",
            "Ne pas communiquer à l'administration pénitentiaire.",
            "Exploitation réservée à l'enquête en cours.")

SCOPES = (("unit", 75), ("chain", 12), ("agency", 8), ("network", 5))
HANDLING = (("H0", 80), ("H1", 10), ("H2", 7), ("H3", 3))
MARKINGS = (("NP", 85), ("DR", 15))
RELIABILITY = (("A", 5), ("B", 45), ("C", 30), ("X", 20))
ASSESSMENT = ((1, 5), (2, 35), (3, 40), (4, 20))

PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # SIV: no I, O, U
ES_PLATE_LETTERS = "BCDFGHJKLMNPRSTVWXYZ"
FR_BANKS = ("30004", "30003", "30002", "10278", "11306", "20041", "30066", "16006", "17515",
            "10107", "13335", "18206")
ES_BANKS = ("2100", "0049", "0182", "0081", "2085", "0128")
CONTAINER_OWNERS = ("MSCU", "MEDU", "MAEU", "MRKU", "CMAU", "CSNU", "HLXU", "TGHU", "TCNU",
                    "SEGU", "GESU", "TRLU", "OOLU", "EGHU", "CAIU", "BMOU")
_FR_MOBILE = re.compile(
    phonenumbers.PhoneMetadata.metadata_for_region("FR").mobile.national_number_pattern
)


@dataclass(frozen=True)
class Filing:
    """One generated record: the request body, where and when it is filed, and what the app
    derives from it (selectors, sorted; entity names, in entity order)."""

    unit_code: str
    body: dict[str, Any]
    created_at: datetime
    selectors: list[tuple[str, str]]
    names: list[str]


class _Choice:
    """Weighted choice with precomputed cumulative weights."""

    def __init__(self, pairs: Sequence[tuple[Any, int]]) -> None:
        self.values = [v for v, _ in pairs]
        self.cum: list[int] = []
        total = 0
        for _, w in pairs:
            total += w
            self.cum.append(total)

    def __call__(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect(self.cum, rng.random() * self.cum[-1])]


def _zipf(values: Sequence[Any]) -> _Choice:
    """Earlier values more likely (weights 1/rank^0.8), as city sizes go."""
    return _Choice([(v, int(1000 / (rank + 1) ** 0.8)) for rank, v in enumerate(values)])


def rib_key(bank: str, branch: str, account: str) -> str:
    """The two-digit key of a French RIB (numeric account numbers)."""
    return f"{97 - int(bank + branch + account + '00') % 97:02d}"


def iban(country: str, bban: str) -> str:
    """An IBAN with its ISO 7064 MOD 97-10 check digits, compact."""
    return country + mod_97_10.calc_check_digits(bban + country) + bban


def grouped(value: str) -> str:
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


class _Context(dict):
    """Template values, drawn only when a template asks for them (`str.format_map`)."""

    def __init__(self, rng: random.Random, fixed: dict[str, Any]) -> None:
        super().__init__(fixed)
        self.rng = rng

    def __missing__(self, key: str) -> Any:
        r = self.rng
        match key:
            case "cite":
                value: Any = r.choice(CITES)
            case "toll":
                value = r.choice(TOLLS)
            case "port":
                value = r.choice(PORTS)
            case "origin":
                value = r.choice(ORIGINS)
            case "model":
                value = r.choice(MODELS)
            case "source":
                value = r.choice(SOURCES)
            case "price":
                value = r.choice((10, 20, 50, 80, 100, 150))
            case "cash":
                value = r.randrange(2, 400) * 500
            case "n":
                value = r.randrange(2, 9)
            case "h1" | "h2":
                self["h1"] = r.randrange(9, 16)
                self["h2"] = self["h1"] + r.randrange(6, 12)
                return self[key]
            case "hour":
                value = f"{r.randrange(24)} h {r.randrange(0, 60, 5):02d}"
            case "day":
                value = f"{r.randrange(1, 29)} {r.choice(MONTHS)}"
            case _:
                raise KeyError(key)
        self[key] = value
        return value


class Generator:
    """Records for one seed. Pools (people, phones, plates, IBANs, containers) are sized
    from `records` so that identifiers recur across records, as they do in real files."""

    def __init__(self, seed: int, records: int) -> None:
        self.rng = random.Random(seed)
        self.records = max(records, 1)
        size = max(self.records, 2000)
        self.people = [self._person() for _ in range(size // 3)]
        self.phones = [self._phone() for _ in range(size // 4)]
        self.plates = [self._plate() for _ in range(size // 5)]
        self.ibans = [self._iban() for _ in range(size // 50)]
        self.containers = [self._container() for _ in range(size // 50)]
        self.unit = _Choice(list(UNIT_WEIGHTS.items()))
        self.communes = {dep: _zipf(c) for dep, c in COMMUNES.items()}
        self.topic = _Choice([(k, v[0]) for k, v in TOPICS.items()])
        self.drug = _Choice([(k, v[0]) for k, v in DRUGS.items()])
        self.scope, self.handling = _Choice(SCOPES), _Choice(HANDLING)
        self.marking, self.reliability = _Choice(MARKINGS), _Choice(RELIABILITY)
        self.assessment = _Choice(ASSESSMENT)
        self.people_count = _Choice([(0, 30), (1, 50), (2, 15), (3, 5)])
        self.phone_count = _Choice([(0, 62), (1, 30), (2, 8)])

    # --- pools ----------------------------------------------------------------------------

    def _person(self) -> tuple[dict[str, Any], str, list[str]]:
        """(entity with its birth date, person_name selector value, names for full text)."""
        r = self.rng
        born = date(1965, 1, 1) + timedelta(days=r.randrange(41 * 365))
        surname, given = r.choice(SURNAMES), r.choice(GIVEN_NAMES)
        person: dict[str, Any] = {
            "kind": "person", "surname": surname, "given_names": given,
            "aliases": [r.choice(ALIASES)] if r.random() < 0.2 else [],
            "birth_date": born.isoformat(),
        }
        if r.random() < 0.3:
            person["nationality"] = r.choice(NATIONALITIES)
        return person, person_name(surname, given), [f"{given} {surname}", *person["aliases"]]

    def _phone(self) -> tuple[str, str]:
        """(as typed, E.164) for a French mobile number the numbering plan allows."""
        r = self.rng
        while True:
            national = r.choice("67") + f"{r.randrange(10**8):08d}"
            if _FR_MOBILE.fullmatch(national):
                break
        pairs = " ".join(national[i : i + 2] for i in range(1, 9, 2))
        typed = r.choice((f"0{national[0]} {pairs}", f"0{national}", f"+33 {national[0]} {pairs}"))
        return typed, "+33" + national

    def _plate(self) -> tuple[str, str, str]:
        """(country, as typed, compact) — SIV plates, some Spanish and Belgian ones."""
        r = self.rng
        roll = r.random()
        if roll < 0.9:
            left = right = "SS"
            while left in ("SS", "WW") or right == "SS":
                left = "".join(r.choices(PLATE_LETTERS, k=2))
                right = "".join(r.choices(PLATE_LETTERS, k=2))
            digits = f"{r.randrange(1, 1000):03d}"
            sep = r.choice(("-", "-", "-", " ", ""))
            return "FR", f"{left}{sep}{digits}{sep}{right}", f"{left}{digits}{right}"
        if roll < 0.97:
            digits, letters = f"{r.randrange(10000):04d}", "".join(r.choices(ES_PLATE_LETTERS, k=3))
            return "ES", f"{digits} {letters}", digits + letters
        first, letters = r.randrange(1, 3), "".join(r.choices(PLATE_LETTERS, k=3))
        digits = f"{r.randrange(1000):03d}"
        return "BE", f"{first}-{letters}-{digits}", f"{first}{letters}{digits}"

    def _iban(self) -> str:
        """A compact IBAN: mostly French (with a valid RIB key), some Spanish and German."""
        r = self.rng
        roll = r.random()
        if roll < 0.85:
            bank, branch = r.choice(FR_BANKS), f"{r.randrange(100000):05d}"
            account = f"{r.randrange(10**11):011d}"
            return iban("FR", bank + branch + account + rib_key(bank, branch, account))
        if roll < 0.95:
            bank, branch = r.choice(ES_BANKS), f"{r.randrange(10000):04d}"
            account = f"{r.randrange(10**10):010d}"
            return iban("ES", bank + branch + ccc.calc_check_digits(bank + branch + "00" + account)
                        + account)
        return iban("DE", f"{r.randrange(10**7, 10**8)}{r.randrange(10**10):010d}")

    def _container(self) -> str:
        serial = self.rng.choice(CONTAINER_OWNERS) + f"{self.rng.randrange(10**6):06d}"
        return serial + iso6346.calc_check_digit(serial)

    # --- records --------------------------------------------------------------------------

    def filings(self, count: int | None = None) -> Iterator[Filing]:
        """`count` (default: `records`) filings, oldest first, spread over SPAN up to END."""
        count = self.records if count is None else count
        step = SPAN / self.records
        start = END - SPAN
        for i in range(count):
            yield self.filing(start + step * i)

    def filing(self, created_at: datetime) -> Filing:
        """One record filed at `created_at` (it happened up to a few days before)."""
        r = self.rng
        unit = self.unit(r)
        dep = unit.removeprefix("CROSS-")
        if r.random() < 0.1:
            dep = r.choice(tuple(COMMUNES))
        commune, lat, lon = self.communes[dep](r)
        _, titles, sentences, tag, leaning = TOPICS[self.topic(r)]
        drug_types = {r.choice(leaning) if r.random() < 0.8 else self.drug(r)}
        if r.random() < 0.25:
            drug_types.add(self.drug(r))
        main_drug = r.choice(sorted(drug_types))
        phrase, de_drug = r.choice(DRUGS[main_drug][1])

        entities: list[dict[str, Any]] = []
        selectors: set[tuple[str, str]] = set()
        names: list[str] = []
        for _ in range(self.people_count(r)):
            person, name, person_names = r.choice(self.people)
            if r.random() < 0.35:
                selectors.add(("person", f"{name}|{person['birth_date']}"))
            else:
                person = {k: v for k, v in person.items() if k != "birth_date"}
            entities.append(person)
            selectors.add(("person_name", name))
            names.extend(person_names)
        phones = [r.choice(self.phones) for _ in range(self.phone_count(r))]
        for typed, e164 in phones:
            entities.append({"kind": "phone", "region": "FR", "number": typed})
            selectors.add(("phone", e164))
        plate = r.choice(self.plates) if r.random() < 0.22 else None
        if plate:
            entities.append({"kind": "vehicle", "plate": plate[1], "country": plate[0]})
            selectors.add(("plate", f"{plate[0]}:{plate[2]}"))
        account = r.choice(self.ibans) if r.random() < 0.03 else None
        if account:
            entities.append({"kind": "bank_account",
                             "iban": grouped(account) if r.random() < 0.7 else account})
            selectors.add(("iban", account))
        container = r.choice(self.containers) if r.random() < 0.02 else None
        if container:
            shown = f"{container[:4]} {container[4:10]} {container[10]}"
            entities.append({"kind": "container", "number": shown})
            selectors.add(("container", container))

        ctx = _Context(r, {
            "commune": commune, "road": r.choice(ROADS[dep]), "de_drug": de_drug, "drug": phrase,
            "qty": self._quantity(DRUGS[main_drug][2]),
            "person": names[0] if names else "un individu non identifié",
            "phone": phones[0][0] if phones else "", "plate": plate[1] if plate else "",
            "iban": grouped(account) if account else "", "container": container or "",
        })
        parts = [r.choice(OPENERS)]
        parts += r.sample(sentences, k=min(len(sentences), r.randrange(2, 4)))
        if phones:
            parts.append(r.choice(PHONE_SENTENCES))
        if plate:
            parts.append(VEHICLE_SENTENCE)
        if account:
            parts.append(IBAN_SENTENCE)
        if container:
            parts.append(CONTAINER_SENTENCE)
        if r.random() < 0.0002:
            parts.append(RARE_SENTENCE)
        parts.append(r.choice(CLOSERS))
        narrative = " ".join(parts).format_map(ctx)
        title = r.choice(titles).format_map(ctx)

        tags = {tag}
        if plate:
            tags.add("vehicule")
        if r.random() < 0.3:
            tags.add(r.choice(EXTRA_TAGS))
        handling = self.handling(r)
        occurred = created_at - timedelta(minutes=int(r.expovariate(1 / (3 * 24 * 60))))
        body = {
            "title": (title[0].upper() + title[1:])[:300],
            "narrative": narrative,
            "occurred_at": occurred.replace(second=0, microsecond=0).isoformat(),
            "location": {"commune": commune, "departement": dep,
                         "lat": round(lat + r.uniform(-0.01, 0.01), 5),
                         "lon": round(lon + r.uniform(-0.01, 0.01), 5)},
            "drug_types": sorted(drug_types),
            "source_reliability": self.reliability(r),
            "information_assessment": self.assessment(r),
            "handling_code": handling,
            "marking": self.marking(r),
            "scope": self.scope(r),
            "tags": sorted(tags),
            "entities": entities,
        }
        if handling == "H3":
            body["handling_note"] = r.choice(H3_NOTES)
        return Filing(unit, body, created_at, sorted(selectors), names)

    def _quantity(self, kind: str) -> str:
        r = self.rng
        if kind == "kg":
            return r.choice(KILOS)
        if kind == "plants":
            return f"{r.randrange(20, 800)} pieds"
        if kind == "tablets":
            return f"{r.randrange(50, 5000)} cachets"
        return f"{r.randrange(10, 500)} doses"
