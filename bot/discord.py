"""Discord adapter (discord.py 2.7): slash commands and buttons in front of the core.

    python -m bot discord         needs DISCORD_TOKEN

Every interaction is deferred first (Discord drops one not acknowledged within
3 seconds), then followed up with the core's reply. Buttons are dynamic items:
their custom_id carries the action (`tho:rate:12:5`), so a button under a poem
sent before a restart still works. The per-user quota is the core's.
"""

import asyncio
import io
import logging

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot import actions, texts
from bot.core import Core, Reply, fit
from bot.runtime import Runtime, require_token
from bot.store import user_key as store_key
from bot.streaming import STREAM_INTERVAL_SECONDS, LiveMessage
from engine.forms import FORMS, MAX_STANZAS, MIN_STANZAS
from engine.settings import SPECS, STRATEGIES

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters in a Discord message
PICTURE_FILENAME = "tho.png"
CUSTOM_ID_PREFIX = "tho:"  # every button's custom_id is "tho:" + the core's action


def _range(kind: type, key: str):
    spec = SPECS[key]
    return app_commands.Range[kind, kind(spec.low), kind(spec.high)]


Temperature = _range(float, "temperature")
TopK = _range(int, "top_k")
TopP = _range(float, "top_p")
RepetitionPenalty = _range(float, "repetition_penalty")
NoRepeatNgram = _range(int, "no_repeat_ngram_size")
Beams = _range(int, "num_beams")
Candidates = _range(int, "candidates")
Seed = _range(int, "seed")
Stanzas = app_commands.Range[int, MIN_STANZAS, MAX_STANZAS]
FORM_CHOICES = [app_commands.Choice(name=form.title, value=form.id) for form in FORMS.values()]
SCHEME_CHOICES = [app_commands.Choice(name=title, value=scheme) for scheme, title in texts.SCHEME_TITLES.items()]
STRATEGY_CHOICES = [app_commands.Choice(name=texts.STRATEGY_LABELS.get(s, s), value=s) for s in STRATEGIES]
DESCRIBE = texts.DISCORD_OPTION_DESCRIPTIONS


def user_key(user: discord.abc.User) -> str:
    return store_key("dc", user.id)


def core_of(interaction: discord.Interaction) -> Core:
    return interaction.client.core


# -- buttons -----------------------------------------------------------------------------------------
class RatingButton(discord.ui.DynamicItem[discord.ui.Button], template=r"tho:rate:(?P<poem>\d+):(?P<stars>[1-5])"):
    """One of the 1-5★ buttons under a poem; the poem id lives in the custom_id."""

    def __init__(self, poem_id: int, stars: int, label: str | None = None):
        super().__init__(
            discord.ui.Button(
                label=label or f"{stars}★", style=discord.ButtonStyle.secondary, custom_id=f"tho:rate:{poem_id}:{stars}"
            )
        )
        self.poem_id = poem_id
        self.stars = stars

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match, /):
        return cls(int(match["poem"]), int(match["stars"]), item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        await press(interaction, f"rate:{self.poem_id}:{self.stars}")


class ActionButton(discord.ui.DynamicItem[discord.ui.Button], template=r"tho:(?P<action>(?:set|reset|delete|pic)\S*)"):
    """A settings, confirmation or picture button: its custom_id is "tho:" + the core's action."""

    def __init__(self, action: str, label: str):
        parsed = actions.parse(action)
        danger = isinstance(parsed, actions.Delete) and parsed.confirmed
        style = discord.ButtonStyle.danger if danger else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=CUSTOM_ID_PREFIX + action))
        self.action = action

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match, /):
        return cls(match["action"], item.label or match["action"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await press(interaction, self.action)


def view_of(reply: Reply) -> discord.ui.View | None:
    """Reply buttons -> a view without timeout (the dynamic items outlive it anyway)."""
    if not reply.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for row, buttons in enumerate(reply.buttons):
        for button in buttons:
            action = actions.parse(button.action)
            if isinstance(action, actions.Rate):
                item = RatingButton(action.poem_id, action.stars, button.label)
            else:
                item = ActionButton(button.action, button.label)
            item.item.row = row
            view.add_item(item)
    return view


async def press(interaction: discord.Interaction, action: str) -> None:
    """A button: acknowledge, run the action, update the message in place."""
    await interaction.response.defer()  # "deferred update": the message is edited below
    if not offered(interaction):
        await interaction.followup.send(texts.UNKNOWN_ACTION, ephemeral=True)
        return
    reply = await core_of(interaction).action(
        user_key(interaction.user), action, display_name=interaction.user.display_name
    )
    if reply.error:
        await interaction.followup.send(fit(reply.text, MESSAGE_LIMIT), ephemeral=True)
        return
    if reply.image is not None:  # the 🖼 button: the picture comes as a new message
        await interaction.followup.send(fit(reply.text, MESSAGE_LIMIT), file=png_file(reply.image))
        return
    view = view_of(reply)
    if reply.poem_id is not None:  # a rating: the poem stays, only its stars change
        await interaction.edit_original_response(view=view)
    else:
        await interaction.edit_original_response(content=fit(reply.text, MESSAGE_LIMIT), view=view)
    if reply.answer:
        await interaction.followup.send(reply.answer, ephemeral=True)


def offered(interaction: discord.Interaction) -> bool:
    """Is the pressed custom_id one of the buttons of the message it came from?"""
    custom_id = (interaction.data or {}).get("custom_id")
    message = interaction.message
    if message is None:  # a component press always comes with its message: a made-up one offers nothing
        return False
    return any(
        getattr(child, "custom_id", None) == custom_id
        for row in message.components
        for child in getattr(row, "children", ())
    )


def png_file(image: bytes) -> discord.File:
    return discord.File(io.BytesIO(image), filename=PICTURE_FILENAME)


async def send(interaction: discord.Interaction, reply: Reply, replace: discord.WebhookMessage | None = None) -> None:
    """Follow up a deferred command with the core's reply (or put it in the message a poem grew in)."""
    kwargs = {}
    view = view_of(reply)
    if view is not None:
        kwargs["view"] = view
    if reply.image is not None:
        kwargs["file"] = png_file(reply.image)
    sent = False
    if replace is not None:
        try:
            await replace.edit(content=fit(reply.text, MESSAGE_LIMIT), view=view)
            sent = True
        except discord.HTTPException:
            log.warning("could not finish a streamed poem in place; sending it anew", exc_info=True)
    if not sent:
        await interaction.followup.send(fit(reply.text, MESSAGE_LIMIT), **kwargs)
    if reply.failed:
        log.error("writing a poem for %s failed (see the traceback above)", user_key(interaction.user))


async def run_command(interaction: discord.Interaction, name: str, args: str = "", *, private: bool = False) -> None:
    await interaction.response.defer(thinking=True, ephemeral=private)
    reply = await core_of(interaction).command(
        user_key(interaction.user), name, args, display_name=interaction.user.display_name
    )
    await send(interaction, reply)


class StreamedFollowup:
    """The follow-up a poem grows in: sent with its first line(s), then edited (bot.streaming paces it)."""

    def __init__(self, interaction: discord.Interaction):
        self.interaction = interaction
        self.message: discord.WebhookMessage | None = None
        self.live = LiveMessage(self.show, interaction.client.stream_interval)

    async def show(self, text: str) -> None:
        if self.message is None:
            self.message = await self.interaction.followup.send(fit(text, MESSAGE_LIMIT), wait=True)
        else:
            await self.message.edit(content=fit(text, MESSAGE_LIMIT))

    async def finish(self) -> discord.WebhookMessage | None:
        """The message to put the final reply in, or None (nothing shown: send it as a new follow-up)."""
        return self.message if await self.live.finish() else None


async def write_poem(interaction: discord.Interaction, name: str, args: str = "", form: str | None = None) -> None:
    """/tho and /tholai: the poem shown line by line in the follow-up as it is written (THO_STREAM=0: at once)."""
    await interaction.response.defer(thinking=True)
    core, user = core_of(interaction), user_key(interaction.user)
    stream = StreamedFollowup(interaction) if interaction.client.stream else None
    on_lines = stream.live.lines if stream else None
    if name == "tho":
        reply = await core.tho(user, args, form=form, on_lines=on_lines)
    else:
        reply = await core.command(user, name, args, on_lines=on_lines)
    await send(interaction, reply, replace=await stream.finish() if stream else None)


# -- slash commands ----------------------------------------------------------------------------------
everywhere = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)


@app_commands.command(name="tho", description=texts.COMMAND_DESCRIPTIONS["tho"])
@app_commands.describe(cau_dau=DESCRIBE["cau_dau"], the=DESCRIBE["the"])
@app_commands.choices(the=FORM_CHOICES)
@everywhere
async def tho(interaction: discord.Interaction, cau_dau: str, the: str | None = None) -> None:
    """/tho cau_dau:<câu mở đầu> the:<thể thơ>: write a poem."""
    await write_poem(interaction, "tho", cau_dau, form=the)


@app_commands.command(name="tholai", description=texts.COMMAND_DESCRIPTIONS["tholai"])
@everywhere
async def tholai(interaction: discord.Interaction) -> None:
    """/tholai: the last opening again, new seed."""
    await write_poem(interaction, "tholai")


@app_commands.command(name="caidat", description=texts.COMMAND_DESCRIPTIONS["caidat"])
@app_commands.describe(
    **{
        name: DESCRIBE[name]
        for name in (
            "nhietdo",
            "topk",
            "topp",
            "lapphat",
            "ngram",
            "chienluoc",
            "sochum",
            "ungvien",
            "hatgiong",
            "the",
            "van",
            "kho",
            "congkhai",
            "kyten",
            "macdinh",
        )
    }
)
@app_commands.choices(the=FORM_CHOICES, van=SCHEME_CHOICES, chienluoc=STRATEGY_CHOICES)
@everywhere
async def caidat(
    interaction: discord.Interaction,
    nhietdo: Temperature | None = None,
    topk: TopK | None = None,
    topp: TopP | None = None,
    lapphat: RepetitionPenalty | None = None,
    ngram: NoRepeatNgram | None = None,
    chienluoc: str | None = None,
    sochum: Beams | None = None,
    ungvien: Candidates | None = None,
    hatgiong: Seed | None = None,
    the: str | None = None,
    van: str | None = None,
    kho: Stanzas | None = None,
    congkhai: bool | None = None,
    kyten: bool | None = None,
    macdinh: bool = False,
) -> None:
    """/caidat: no option shows the settings; each option given is saved (ranges checked by Discord and the core)."""
    await interaction.response.defer(thinking=True, ephemeral=True)
    core, user = core_of(interaction), user_key(interaction.user)
    given = {
        "nhietdo": nhietdo,
        "topk": topk,
        "topp": topp,
        "lapphat": lapphat,
        "ngram": ngram,
        "chienluoc": chienluoc,
        "sochum": sochum,
        "ungvien": ungvien,
        "hatgiong": hatgiong,
        "the": the,
        "van": van,
        "kho": kho,
        "congkhai": None if congkhai is None else "co" if congkhai else "khong",
        "kyten": None if kyten is None else "co" if kyten else "khong",
    }
    notes = []
    if macdinh:
        notes.append((await core.caidat(user, "macdinh")).text)
    for name, value in given.items():
        if value is not None:
            notes.append((await core.caidat(user, f"{name} {value}")).text)
    panel = await core.caidat(user)
    await send(interaction, Reply("\n".join([*notes, panel.text]) if notes else panel.text, buttons=panel.buttons))


@app_commands.command(name="danhgia", description=texts.COMMAND_DESCRIPTIONS["danhgia"])
@app_commands.describe(sao=DESCRIBE["sao"])
@everywhere
async def danhgia(interaction: discord.Interaction, sao: app_commands.Range[int, 1, 5]) -> None:
    """/danhgia sao:<1-5>: rate the last poem."""
    await run_command(interaction, "danhgia", str(sao), private=True)


@app_commands.command(name="top", description=texts.COMMAND_DESCRIPTIONS["top"])
@everywhere
async def top(interaction: discord.Interaction) -> None:
    """/top: the best-rated poems."""
    await run_command(interaction, "top")


@app_commands.command(name="anh", description=texts.COMMAND_DESCRIPTIONS["anh"])
@everywhere
async def anh(interaction: discord.Interaction) -> None:
    """/anh: the last poem as a picture."""
    await run_command(interaction, "anh")


@app_commands.command(name="giaithich", description=texts.COMMAND_DESCRIPTIONS["giaithich"])
@app_commands.describe(dong=DESCRIBE["dong"], chu=DESCRIBE["chu"])
@everywhere
async def giaithich(
    interaction: discord.Interaction,
    dong: app_commands.Range[int, 1, 99] | None = None,
    chu: app_commands.Range[int, 1, 99] | None = None,
) -> None:
    """/giaithich [dong] [chu]: how sure the model was of each syllable; where it looked for one."""
    args = f"{dong} {chu}" if dong is not None and chu is not None else "" if dong is None and chu is None else "?"
    await run_command(interaction, "giaithich", args)


@app_commands.command(name="xoadulieu", description=texts.COMMAND_DESCRIPTIONS["xoadulieu"])
@everywhere
async def xoadulieu(interaction: discord.Interaction) -> None:
    """/xoadulieu: asks for confirmation with two buttons."""
    await run_command(interaction, "xoadulieu", private=True)


@app_commands.command(name="giupdo", description=texts.COMMAND_DESCRIPTIONS["giupdo"])
@everywhere
async def giupdo(interaction: discord.Interaction) -> None:
    """/giupdo: how to use the bot."""
    await run_command(interaction, "giupdo", private=True)


@app_commands.command(name="trangthai", description=texts.ADMIN_COMMAND_DESCRIPTIONS["trangthai"])
@everywhere
async def trangthai(interaction: discord.Interaction) -> None:
    """/trangthai (admins; the core answers anyone else as for an unknown command)."""
    await run_command(interaction, "trangthai", private=True)


MODEL_ACTIONS = [
    app_commands.Choice(name="chọn phiên bản", value="chon"),
    app_commands.Choice(name="quay lại bản trước", value="quaylai"),
]


@app_commands.command(name="mohinh", description=texts.ADMIN_COMMAND_DESCRIPTIONS["mohinh"])
@app_commands.describe(hanh_dong=DESCRIBE["hanh_dong"], phien_ban=DESCRIBE["phien_ban"])
@app_commands.choices(hanh_dong=MODEL_ACTIONS)
@everywhere
async def mohinh(interaction: discord.Interaction, hanh_dong: str | None = None, phien_ban: str | None = None) -> None:
    """/mohinh [hanh_dong] [phien_ban] (admins): list, promote, roll back."""
    args = " ".join(part for part in (hanh_dong, phien_ban) if part)
    await run_command(interaction, "mohinh", args, private=True)


COMMANDS = (tho, tholai, caidat, danhgia, top, anh, giaithich, xoadulieu, giupdo, trangthai, mohinh)


async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """Log the traceback; the user gets a short apology, never the traceback."""
    log.error("slash command %s failed", interaction.command and interaction.command.name, exc_info=error)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(texts.APOLOGY, ephemeral=True)
        else:
            await interaction.response.send_message(texts.APOLOGY, ephemeral=True)
    except discord.HTTPException:
        log.exception("could not apologise to the user")


# -- the client --------------------------------------------------------------------------------------
class ThoClient(discord.Client):
    """A slash-command-only client (no privileged intents needed)."""

    def __init__(
        self,
        core: Core,
        *,
        sync_commands: bool = True,
        stream: bool = True,
        stream_interval: float = STREAM_INTERVAL_SECONDS,
        **options,
    ):
        super().__init__(intents=discord.Intents.default(), **options)
        self.core = core
        self.stream = stream  # THO_STREAM
        self.stream_interval = stream_interval
        self.sync_commands = sync_commands
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = on_tree_error
        for command in COMMANDS:
            self.tree.add_command(command)

    async def setup_hook(self) -> None:
        # Buttons on any message, old ones included, find their handler by custom_id.
        self.add_dynamic_items(RatingButton, ActionButton)
        if self.sync_commands:
            await self.tree.sync()

    async def on_ready(self) -> None:
        log.info("Discord bot %s is up in %d guilds", self.user, len(self.guilds))


def build_client(runtime: Runtime, **options) -> ThoClient:
    return ThoClient(runtime.core, **{"stream": runtime.settings.stream, **options})


async def serve(runtime: Runtime) -> None:
    """Run the Discord bot until cancelled."""
    settings = runtime.settings
    token = require_token(settings, "discord_token")
    if settings.discord_api_url:
        discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    client = build_client(runtime)
    try:
        await client.start(token)
    finally:
        if not client.is_closed():
            await asyncio.shield(client.close())
