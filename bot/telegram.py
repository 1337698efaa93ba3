"""Telegram adapter (python-telegram-bot 22): parse updates, call the core, render replies.

    python -m bot telegram        needs TELEGRAM_TOKEN; TELEGRAM_BASE_URL for a self-hosted Bot API server

Every command goes to `Core.command` and every button to `Core.action`; this
file only turns a `Reply` into a message with an inline keyboard. Updates are
handled concurrently, so one slow poem never blocks other users; the per-user
quota lives in the core. Flood control (HTTP 429) is PTB's AIORateLimiter,
which waits `retry_after` seconds and sends again. Long polling by default; a
webhook when TELEGRAM_WEBHOOK_URL is set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import traceback
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot import texts
from bot.core import ADMIN_COMMANDS, COMMAND_ALIASES, POEM_COMMANDS, USER_COMMANDS, Core, Reply, fit
from bot.runtime import Runtime, require_token
from bot.store import user_key as store_key
from bot.streaming import GROUP_STREAM_INTERVAL_SECONDS, STREAM_INTERVAL_SECONDS, LiveMessage

log = logging.getLogger(__name__)

CONCURRENT_UPDATES = 64  # updates handled at once; the engine batches the poems they ask for
TYPING_INTERVAL_SECONDS = 4.0  # Telegram shows "typing..." for 5 s after each sendChatAction
FLOOD_MAX_RETRIES = 3  # resend after a 429 at most this many times
POLL_TIMEOUT_SECONDS = 30  # long-polling: getUpdates waits this long for an update
ANSWER_LIMIT = 200  # answerCallbackQuery text limit
ADMIN_TRACE_CHARS = 3000  # the end of a traceback is the part that says what went wrong
# Every other user command goes straight to the core (its aliases too: /help).
OTHER_COMMANDS = (*(c for c in USER_COMMANDS if c not in POEM_COMMANDS), *COMMAND_ALIASES)
MESSAGE_LIMIT = MessageLimit.MAX_TEXT_LENGTH
CAPTION_LIMIT = 1024  # a photo's caption
# Inline mode (@Bot <câu mở đầu> in any chat). Clients send a query at every keystroke: a poem is
# written only for the query a user left standing this long, the ones typed over are never answered.
INLINE_DEBOUNCE_SECONDS = 0.8
INLINE_CACHE_SECONDS = 30  # Telegram may show the same answer again this long (to this user only)
INLINE_USERS_REMEMBERED = 10_000  # users whose latest inline query is remembered (oldest forgotten first)
INLINE_BUTTON_LIMIT = 64  # the text of the button shown instead of results
INLINE_TITLE_LIMIT = 100


def sender_chat(update: Update) -> Chat | None:
    """The chat a new message was sent on behalf of, if any. Anonymous group admins (and channels) all
    write as one Telegram account (GroupAnonymousBot, Channel_Bot): keyed by that, every group's
    anonymous admins would share settings, last poem and rate limit."""
    return update.message.sender_chat if update.message is not None else None


def user_key(update: Update) -> str:
    """Who the bot answers: the user, or the chat they wrote on behalf of (chat ids are negative, so
    "tg:-100…" never meets a user's key)."""
    chat = sender_chat(update)
    return store_key("tg", chat.id if chat is not None else update.effective_user.id)


def display_name(update: Update) -> str:
    """The name a picture may be signed with: the user's, or the chat's they wrote on behalf of."""
    chat = sender_chat(update)
    return (chat.title or "") if chat is not None else update.effective_user.full_name


def command_args(message: Message) -> str:
    """The text after `/cmd` or `/cmd@botname`, as typed (inner spacing kept)."""
    text = message.text or ""
    # CommandHandler only fires when a bot_command entity opens the message.
    end = message.entities[0].length if message.entities else 0
    return text[end:].strip(" \n\t")


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Reply buttons -> inline keyboard; each button's action is its callback_data (<= 64 bytes)."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.action) for b in row] for row in reply.buttons]
    )


def core_of(context: ContextTypes.DEFAULT_TYPE) -> Core:
    return context.application.bot_data["core"]


@contextlib.asynccontextmanager
async def typing(update: Update, context: ContextTypes.DEFAULT_TYPE) -> AsyncIterator[None]:
    """Show "typing..." in the chat until the block ends (re-sent every few seconds)."""
    chat_id = update.effective_chat.id

    async def keep_typing() -> None:
        while True:
            try:
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramError as exc:  # a lost indicator is not worth failing the poem
                log.debug("sendChatAction failed: %s", exc)
            await asyncio.sleep(TYPING_INTERVAL_SECONDS)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def send(
    update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply, replace: Message | None = None
) -> None:
    """Answer in the chat the command came from (or replace the message a poem grew in);
    report our own failures to the admins."""
    sent = False
    if replace is not None:
        try:
            await replace.edit_text(fit(reply.text, MESSAGE_LIMIT), reply_markup=keyboard(reply))
            sent = True
        except TelegramError:
            log.warning("could not finish a streamed poem in place; sending it anew", exc_info=True)
    if not sent and reply.image is not None:
        await update.effective_message.reply_photo(
            reply.image,
            caption=fit(reply.text, CAPTION_LIMIT),
            reply_markup=keyboard(reply),
            do_quote=update.effective_chat.type != "private",
        )
    elif not sent:
        await update.effective_message.reply_text(
            fit(reply.text, MESSAGE_LIMIT),
            reply_markup=keyboard(reply),
            do_quote=update.effective_chat.type != "private",
        )
    if reply.failed:
        await notify_admins(context, texts.ADMIN_POEM_FAILED.format(user=user_key(update)))


class StreamedReply:
    """The message a poem grows in: sent with its first line(s), then edited (bot.streaming paces it)."""

    def __init__(self, update: Update, context: ContextTypes.DEFAULT_TYPE):
        self.update = update
        self.message: Message | None = None
        interval = context.application.bot_data.get("stream_interval")
        if interval is None:
            private = update.effective_chat.type == "private"
            interval = STREAM_INTERVAL_SECONDS if private else GROUP_STREAM_INTERVAL_SECONDS
        self.live = LiveMessage(self.show, interval)

    async def show(self, text: str) -> None:
        if self.message is None:
            self.message = await self.update.effective_message.reply_text(
                fit(text, MESSAGE_LIMIT), do_quote=self.update.effective_chat.type != "private"
            )
        else:
            await self.message.edit_text(fit(text, MESSAGE_LIMIT))

    async def finish(self) -> Message | None:
        """The message to put the final reply in, or None (nothing shown: send it as a new message)."""
        return self.message if await self.live.finish() else None


# -- handlers ----------------------------------------------------------------------------------------
async def poem_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tho <câu mở đầu> and /tholai: write a poem, shown line by line as it is written (THO_STREAM=0: at once)."""
    name = command_name(update.effective_message)
    stream = StreamedReply(update, context) if context.application.bot_data.get("stream") else None
    async with typing(update, context):
        reply = await core_of(context).command(
            user_key(update), name, command_args(update.effective_message), on_lines=stream and stream.live.lines
        )
    # The whole poem with its rating buttons, or the error, replaces the lines shown so far.
    await send(update, context, reply, replace=await stream.finish() if stream else None)


async def other_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start, /giupdo, /caidat, /danhgia, /top, /anh, /giaithich, /xoadulieu: straight to the core."""
    name = command_name(update.effective_message)
    reply = await core_of(context).command(
        user_key(update),
        name,
        command_args(update.effective_message),
        display_name=display_name(update),  # on the /anh picture, if the user agreed
    )
    await send(update, context, reply)


async def admin_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/trangthai, /mohinh: the core checks THO_ADMINS; anyone else is answered as for an unknown command."""
    reply = await core_of(context).command(
        user_key(update), command_name(update.effective_message), command_args(update.effective_message)
    )
    if reply.text == texts.UNKNOWN_COMMAND and update.effective_chat.type != "private":
        return  # in a group an unknown command gets no answer (it may be another bot's)
    await send(update, context, reply)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command we don't know, in a private chat (in groups it may be another bot's)."""
    await send(
        update, context, await core_of(context).command(user_key(update), command_name(update.effective_message))
    )


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button: run its action, answer the callback, update the message in place."""
    query = update.callback_query
    action = offered_action(query, context.application.bot_data["button_key"])
    if action is None:
        # A client can send any callback data: only a button that is on this message counts.
        await query.answer(texts.UNKNOWN_ACTION)
        return
    reply = await core_of(context).action(user_key(update), action, display_name=display_name(update))
    # CallbackQueries need to be answered, even if no notification to the user is needed:
    # until then the client shows a spinner on the button.
    await query.answer(fit(reply.answer or ("" if not reply.error else reply.text), ANSWER_LIMIT) or None)
    if reply.error or not isinstance(query.message, Message):
        return
    if reply.image is not None:  # the 🖼 button: the picture comes as a new message under the poem
        await query.message.reply_photo(reply.image, caption=fit(reply.text, CAPTION_LIMIT))
        return
    try:
        if reply.poem_id is not None:
            # A rating: the poem stays, only its stars change.
            await query.edit_message_reply_markup(reply_markup=keyboard(reply))
        else:
            await query.edit_message_text(fit(reply.text, MESSAGE_LIMIT), reply_markup=keyboard(reply))
    except BadRequest as exc:
        # Clicking the same star twice leaves the message as it is; Telegram refuses a no-op edit.
        if "not modified" not in exc.message.lower():
            raise


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """@Bot <câu mở đầu>: a poem with the user's own settings and rate limit, offered to send in that chat."""
    query = update.inline_query
    opening = query.query.strip()
    if not opening:
        hint = start_button(texts.INLINE_HINT)
        await query.answer([], cache_time=INLINE_CACHE_SECONDS, is_personal=True, button=hint)
        return
    latest = context.application.bot_data.setdefault("inline_latest", {})
    latest.pop(query.from_user.id, None)  # re-inserted last: the dict's order is oldest first
    latest[query.from_user.id] = query.id
    while len(latest) > INLINE_USERS_REMEMBERED:
        latest.pop(next(iter(latest)))
    await asyncio.sleep(context.application.bot_data.get("inline_debounce", INLINE_DEBOUNCE_SECONDS))
    if latest.get(query.from_user.id) != query.id:
        return  # typed over: a newer query of this user is being answered
    reply = await core_of(context).command(user_key(update), "tho", opening)
    if reply.poem_id is None:  # refused (too fast, bad opening...): say why, send nothing
        await query.answer([], cache_time=0, is_personal=True, button=start_button(reply.text))
        return
    title, _, rest = reply.text.partition("\n")
    key = context.application.bot_data["button_key"]
    result = InlineQueryResultArticle(
        id=str(reply.poem_id),
        title=fit(title, INLINE_TITLE_LIMIT),
        description=fit(rest.strip(), INLINE_TITLE_LIMIT),
        input_message_content=InputTextMessageContent(fit(reply.text, MESSAGE_LIMIT)),
        # Only the stars: the picture button needs a chat to send the picture to, which an inline message lacks.
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton(b.label, callback_data=signed(b.action, key)) for b in reply.buttons[0]]]
        ),
    )
    await query.answer([result], cache_time=INLINE_CACHE_SECONDS, is_personal=True)


def start_button(text: str) -> InlineQueryResultsButton:
    """Shown above (instead of) inline results; pressing it opens the private chat with the bot."""
    return InlineQueryResultsButton(text=fit(text, INLINE_BUTTON_LIMIT), start_parameter="inline")


def offered_action(query: CallbackQuery, key: bytes) -> str | None:
    """The pressed button's action, if it is one of the buttons of the message it came with; else None.

    A message sent through inline mode does not come with the press (only its inline_message_id), so
    its buttons carry a signature instead (`signed`): without it anyone could send "rate:<any poem
    id>:5" from an inline message and rate poems written in private chats into /top. A message the
    bot can no longer read (deleted) offers nothing."""
    data = query.data or ""
    message = query.message
    if isinstance(message, Message):
        markup = message.reply_markup
        on_it = markup is not None and any(b.callback_data == data for row in markup.inline_keyboard for b in row)
        return data if on_it else None
    if query.inline_message_id:
        action, _, signature = data.rpartition(SIGNATURE_SEPARATOR)
        return action if action and hmac.compare_digest(signature, _signature(action, key)) else None
    return None


SIGNATURE_SEPARATOR = "~"


def button_key(token: str) -> bytes:
    """The key that signs inline-mode buttons: derived from the bot token, so it survives restarts and
    differs per bot; the token itself cannot be read back from it."""
    return hashlib.sha256(b"tho-bot inline buttons\0" + token.encode()).digest()


def _signature(action: str, key: bytes) -> str:
    digest = hmac.new(key, action.encode(), hashlib.sha256).digest()[:9]  # 72 bits: no guessing online
    return base64.urlsafe_b64encode(digest).decode()


def signed(action: str, key: bytes) -> str:
    """`action` with its signature, as an inline message's button carries it (12 more bytes of 64)."""
    return f"{action}{SIGNATURE_SEPARATOR}{_signature(action, key)}"


def command_name(message: Message) -> str:
    """`/Tho@ThoBot abc` -> "tho"."""
    first = (message.text or "").split(maxsplit=1)[0] if message.text else ""
    return first.lstrip("/").split("@", 1)[0].lower()


async def notify_admins(context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    chat = context.application.bot_data.get("admin_chat")
    if chat is None:
        return
    try:
        await context.bot.send_message(chat, fit(text, MESSAGE_LIMIT))
    except TelegramError:
        log.exception("could not report to the admin chat")  # its id stays out of the log


def describe(update: object) -> str:
    """Who did what, in one line, for the admin report."""
    if not isinstance(update, Update):
        return repr(update)[:200]
    what = (
        update.callback_query.data
        if update.callback_query
        else (update.effective_message.text if update.effective_message else None)
    )
    user = user_key(update) if update.effective_user else "?"
    chat = update.effective_chat.id if update.effective_chat else "?"
    return f"{user} in chat {chat}: {what!r}"[:500]


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the traceback, tell the admin chat, apologise to the user (never show a traceback)."""
    log.error("handling an update failed", exc_info=context.error)
    trace = "".join(traceback.format_exception(context.error))
    if len(trace) > ADMIN_TRACE_CHARS:
        trace = "…" + trace[-ADMIN_TRACE_CHARS:]
    await notify_admins(context, texts.ADMIN_ERROR.format(update=describe(update), trace=trace))
    if isinstance(update, Update):
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(texts.APOLOGY[:ANSWER_LIMIT])
            elif update.effective_message is not None:
                await update.effective_message.reply_text(texts.APOLOGY)
        except TelegramError:
            log.exception("could not apologise to the user")


# -- wiring ------------------------------------------------------------------------------------------
def build_application(runtime: Runtime, *, rate_limiter: AIORateLimiter | None = None) -> Application:
    """The PTB Application for this runtime, handlers registered; not started."""
    settings = runtime.settings
    token = require_token(settings, "telegram_token")
    base_url = settings.telegram_base_url.rstrip("/")
    base_file_url = base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url
    application = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(CONCURRENT_UPDATES)
        .rate_limiter(rate_limiter or AIORateLimiter(max_retries=FLOOD_MAX_RETRIES))
        .build()
    )
    application.bot_data["core"] = runtime.core
    application.bot_data["button_key"] = button_key(token)
    application.bot_data["admin_chat"] = settings.telegram_admin_chat
    application.bot_data["stream"] = settings.stream
    application.bot_data["stream_interval"] = None  # None: by chat type (bot.streaming); tests set 0
    # New messages only: editing an old /tho or /danhgia would run it again (and rate the latest poem).
    new = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler(POEM_COMMANDS, poem_command, filters=new))
    application.add_handler(CommandHandler(OTHER_COMMANDS, other_command, filters=new))
    application.add_handler(CommandHandler(ADMIN_COMMANDS, admin_command, filters=new))
    application.add_handler(MessageHandler(new & filters.COMMAND & filters.ChatType.PRIVATE, unknown_command))
    application.add_handler(CallbackQueryHandler(button))
    application.add_handler(InlineQueryHandler(inline_query))
    application.add_error_handler(on_error)
    return application


async def register_commands(application: Application) -> None:
    """The command menu users see, with Vietnamese descriptions."""
    await application.bot.set_my_commands(
        [BotCommand(name, description) for name, description in texts.COMMAND_DESCRIPTIONS.items()]
    )


@contextlib.asynccontextmanager
async def running(
    runtime: Runtime, *, poll_timeout: float = POLL_TIMEOUT_SECONDS, application: Application | None = None
) -> AsyncIterator[Application]:
    """Start the application in the current event loop (not run_polling, which owns the loop)."""
    application = application or build_application(runtime)
    settings = runtime.settings
    async with application:  # initialize() ... shutdown()
        await register_commands(application)
        updater = application.updater
        if settings.telegram_webhook_url:
            path = urlsplit(settings.telegram_webhook_url).path.lstrip("/")
            secret = settings.telegram_webhook_secret
            # Telegram sends the secret in a header with every update; PTB refuses requests without it.
            await updater.start_webhook(
                listen="0.0.0.0",
                port=settings.telegram_webhook_port,
                url_path=path,
                webhook_url=settings.telegram_webhook_url,
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await updater.start_polling(timeout=poll_timeout, allowed_updates=Update.ALL_TYPES)
        await application.start()
        log.info("Telegram bot @%s is up", application.bot.username)
        try:
            yield application
        finally:
            if updater.running:
                await updater.stop()
            if application.running:
                await application.stop()


async def serve(runtime: Runtime) -> None:
    """Run the Telegram bot until cancelled."""
    async with running(runtime):
        await asyncio.Event().wait()
