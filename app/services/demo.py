"""Demo data: the unit tree, the demo personas and the demo service client.

Loading is idempotent: what exists is kept, what is missing is added. The attachment of
départements to antennes below is illustrative, made for the demo; it is not the official
OFAST organisation chart.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import SYSTEM
from app.errors import Problem
from app.models import Membership, ServiceClient, Unit, User
from app.services import clients as clients_service
from app.services import users as users_service
from app.settings import Settings

DEPARTEMENTS = {
    "01": "Ain",
    "02": "Aisne",
    "03": "Allier",
    "04": "Alpes-de-Haute-Provence",
    "05": "Hautes-Alpes",
    "06": "Alpes-Maritimes",
    "07": "Ardèche",
    "08": "Ardennes",
    "09": "Ariège",
    "10": "Aube",
    "11": "Aude",
    "12": "Aveyron",
    "13": "Bouches-du-Rhône",
    "14": "Calvados",
    "15": "Cantal",
    "16": "Charente",
    "17": "Charente-Maritime",
    "18": "Cher",
    "19": "Corrèze",
    "2A": "Corse-du-Sud",
    "2B": "Haute-Corse",
    "21": "Côte-d'Or",
    "22": "Côtes-d'Armor",
    "23": "Creuse",
    "24": "Dordogne",
    "25": "Doubs",
    "26": "Drôme",
    "27": "Eure",
    "28": "Eure-et-Loir",
    "29": "Finistère",
    "30": "Gard",
    "31": "Haute-Garonne",
    "32": "Gers",
    "33": "Gironde",
    "34": "Hérault",
    "35": "Ille-et-Vilaine",
    "36": "Indre",
    "37": "Indre-et-Loire",
    "38": "Isère",
    "39": "Jura",
    "40": "Landes",
    "41": "Loir-et-Cher",
    "42": "Loire",
    "43": "Haute-Loire",
    "44": "Loire-Atlantique",
    "45": "Loiret",
    "46": "Lot",
    "47": "Lot-et-Garonne",
    "48": "Lozère",
    "49": "Maine-et-Loire",
    "50": "Manche",
    "51": "Marne",
    "52": "Haute-Marne",
    "53": "Mayenne",
    "54": "Meurthe-et-Moselle",
    "55": "Meuse",
    "56": "Morbihan",
    "57": "Moselle",
    "58": "Nièvre",
    "59": "Nord",
    "60": "Oise",
    "61": "Orne",
    "62": "Pas-de-Calais",
    "63": "Puy-de-Dôme",
    "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées",
    "66": "Pyrénées-Orientales",
    "67": "Bas-Rhin",
    "68": "Haut-Rhin",
    "69": "Rhône",
    "70": "Haute-Saône",
    "71": "Saône-et-Loire",
    "72": "Sarthe",
    "73": "Savoie",
    "74": "Haute-Savoie",
    "75": "Paris",
    "76": "Seine-Maritime",
    "77": "Seine-et-Marne",
    "78": "Yvelines",
    "79": "Deux-Sèvres",
    "80": "Somme",
    "81": "Tarn",
    "82": "Tarn-et-Garonne",
    "83": "Var",
    "84": "Vaucluse",
    "85": "Vendée",
    "86": "Vienne",
    "87": "Haute-Vienne",
    "88": "Vosges",
    "89": "Yonne",
    "90": "Territoire de Belfort",
    "91": "Essonne",
    "92": "Hauts-de-Seine",
    "93": "Seine-Saint-Denis",
    "94": "Val-de-Marne",
    "95": "Val-d'Oise",
    "971": "Guadeloupe",
    "972": "Martinique",
    "973": "Guyane",
    "974": "La Réunion",
    "976": "Mayotte",
}

# antenne code suffix -> (name, départements attached to it for the demo)
ANTENNES = {
    "AJACCIO": ("Ajaccio", ["2A", "2B"]),
    "BORDEAUX": (
        "Bordeaux",
        [
            "09",
            "12",
            "16",
            "17",
            "19",
            "23",
            "24",
            "31",
            "32",
            "33",
            "40",
            "46",
            "47",
            "64",
            "65",
            "79",
            "81",
            "82",
            "86",
            "87",
        ],
    ),
    "CAYENNE": ("Cayenne", ["973"]),
    "DIJON": ("Dijon", ["21", "25", "39", "58", "70", "71", "89", "90"]),
    "FORT-DE-FRANCE": ("Fort-de-France", ["971", "972"]),
    "LILLE": ("Lille", ["02", "59", "60", "62", "80"]),
    "LYON": ("Lyon", ["01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"]),
    "MARSEILLE": ("Marseille", ["04", "05", "06", "11", "13", "30", "34", "48", "66", "83", "84"]),
    "ORLEANS": ("Orléans", ["18", "28", "36", "37", "41", "45"]),
    "PAPEETE": ("Papeete", []),
    "RENNES": ("Rennes", ["14", "22", "29", "35", "44", "49", "50", "53", "56", "61", "72", "85"]),
    "SAINT-DENIS": ("Saint-Denis de La Réunion", ["974", "976"]),
    "STRASBOURG": ("Strasbourg", ["08", "10", "51", "52", "54", "55", "57", "67", "68", "88"]),
    "VERSAILLES": ("Versailles", ["27", "75", "76", "77", "78", "91", "92", "93", "94", "95"]),
}

POLES = {
    "STRATEGIE": "Pôle stratégie",
    "RENSEIGNEMENT": "Pôle renseignement",
    "OPERATIONS": "Pôle opérations",
}

# username, display name, agency, platform roles, (unit code, role) or None
PERSONAS = [
    ("admin", "Administrateur plateforme", "ofast", ["admin"], None),
    ("auditor", "Auditeur", "justice", ["auditor"], None),
    ("ofast.chef", "Chef OFAST", "police", [], ("OFAST", "supervisor")),
    ("ofast.analyste", "Analyste OFAST", "gendarmerie", [], ("OFAST", "analyst")),
    ("marseille.chef", "Chef antenne Marseille", "police", [], ("ANT-MARSEILLE", "supervisor")),
    ("lille.chef", "Chef antenne Lille", "gendarmerie", [], ("ANT-LILLE", "supervisor")),
    ("cross13.chef", "Chef CROSS 13", "gendarmerie", [], ("CROSS-13", "supervisor")),
    ("cross13.police", "Officier police CROSS 13", "police", [], ("CROSS-13", "officer")),
    (
        "cross13.gendarme",
        "Officier gendarmerie CROSS 13",
        "gendarmerie",
        [],
        ("CROSS-13", "officer"),
    ),
    ("cross13.douane", "Agent des douanes CROSS 13", "douane", [], ("CROSS-13", "officer")),
    ("cross83.police", "Officier police CROSS 83", "police", [], ("CROSS-83", "officer")),
    ("cross59.douane", "Agent des douanes CROSS 59", "douane", [], ("CROSS-59", "officer")),
]

DEMO_CLIENT = (
    "douane-dnred",
    "DNRED — système douanier",
    "CROSS-59",
    "douane",
    ["records:read", "records:write"],
    "NP",
)


def unit_tree() -> list[tuple[str, str, str, str | None, str | None]]:
    """(code, name, kind, parent code, département) for every demo unit, parents first."""
    units: list[tuple[str, str, str, str | None, str | None]] = [
        ("OFAST", "Office anti-stupéfiants", "national", None, None)
    ]
    units += [(f"OFAST-{k}", v, "pole", "OFAST", None) for k, v in POLES.items()]
    for key, (name, deps) in ANTENNES.items():
        units.append((f"ANT-{key}", f"Antenne OFAST {name}", "antenne", "OFAST", None))
        units += [
            (f"CROSS-{d}", f"CROSS {d} {DEPARTEMENTS[d]}", "cross", f"ANT-{key}", d) for d in deps
        ]
    return units


async def load_demo(session: AsyncSession, settings: Settings) -> dict[str, int]:
    """Add what is missing of the demo data; returns how many rows of each kind were added."""
    if settings.is_production:
        raise Problem(409, "demo_refused", "Refused", "Demo data is never loaded in production.")
    added = {"units": 0, "users": 0, "memberships": 0, "clients": 0}
    by_code = {u.code: u for u in await session.scalars(select(Unit))}
    for code, name, kind, parent, dep in unit_tree():
        if code not in by_code:
            unit = Unit(
                code=code,
                name=name,
                kind=kind,
                departement=dep,
                parent_id=by_code[parent].id if parent else None,
            )
            session.add(unit)
            await session.flush()
            by_code[code] = unit
            added["units"] += 1

    password = settings.demo_password.get_secret_value()
    users = {u.username: u for u in await session.scalars(select(User))}
    for username, display, agency, roles, membership in PERSONAS:
        user = users.get(username)
        if user is None:
            user = await users_service.add_user(
                session,
                SYSTEM,
                username=username,
                display_name=display,
                agency=agency,
                password=password,
                email=f"{username}@demo.crossintel.invalid",
                platform_roles=roles,
            )
            added["users"] += 1
        if membership is not None:
            unit = by_code[membership[0]]
            exists = await session.scalar(
                select(Membership.id).where(
                    Membership.user_id == user.id, Membership.unit_id == unit.id
                )
            )
            if exists is None:
                await users_service.add_membership(session, SYSTEM, user, unit.id, membership[1])
                added["memberships"] += 1

    client_id, name, unit_code, agency, scopes, marking = DEMO_CLIENT
    if (
        await session.scalar(select(ServiceClient.id).where(ServiceClient.client_id == client_id))
        is None
    ):
        await clients_service.add_client(
            session,
            SYSTEM,
            client_id=client_id,
            name=name,
            unit_id=by_code[unit_code].id,
            agency=agency,
            scopes=scopes,
            max_marking=marking,
            secret=settings.demo_client_secret.get_secret_value(),
        )
        added["clients"] += 1
    return added
