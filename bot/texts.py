"""Every Vietnamese text a user reads, in one place.

Adapters and the core format these; no other module writes user-facing words.
"""

from __future__ import annotations

from engine.forms import FORMS, SCHEME_TITLES

BOT_NAME = "Thơ bot"

COMMAND_DESCRIPTIONS = {
    "tho": "Làm thơ từ câu mở đầu của bạn",
    "tholai": "Làm lại bài thơ vừa rồi (cùng câu mở đầu)",
    "caidat": "Xem và đổi cài đặt (nhiệt độ, thể thơ, số khổ...)",
    "danhgia": "Chấm điểm bài thơ vừa rồi (1-5 sao)",
    "top": "Những bài thơ được chấm cao nhất",
    "anh": "Gửi bài thơ vừa rồi thành một bức tranh",
    "giaithich": "Mô hình chắc đến đâu ở từng chữ (/giaithich 2 3: chữ 3 dòng 2)",
    "xoadulieu": "Xoá toàn bộ dữ liệu của bạn",
    "giupdo": "Hướng dẫn sử dụng",
}

WELCOME = (
    f"Chào bạn! Mình là {BOT_NAME}, mình làm thơ tiếng Việt.\n"
    "Gõ /tho và một câu mở đầu, ví dụ: /tho Mùa thu lá vàng rơi\n"
    "Gõ /giupdo để xem hướng dẫn."
)

# The limits ({per_minute}, {max_work}, {timeout}) come from the configuration: Core.help_text fills them.
HELP = """Cách dùng {bot}:
/tho <câu mở đầu> — làm một bài thơ mở đầu bằng câu của bạn.
   Câu 5 chữ thành thơ 5 chữ, 6 chữ thành lục bát, 7 chữ thành thơ 7 chữ, 8 chữ thành thơ 8 chữ.
/tholai — làm lại bài vừa rồi với hạt giống mới.
/danhgia <1-5> — chấm bài thơ vừa rồi.
/caidat — xem cài đặt; /caidat <tên> <giá trị> để đổi; /caidat macdinh để đặt lại.
   Tên: {names}
   Thể thơ: {forms}
   Cách gieo vần (thơ 5, 7, 8 chữ): /caidat van {schemes}
   /caidat congkhai khong — bài của bạn không bao giờ hiện trong /top.
/anh — bài thơ vừa rồi thành tranh (hoặc bấm 🖼 dưới bài). /caidat kyten co — ký tên bạn trên tranh.
/giaithich — mỗi chữ tô màu theo độ chắc của mô hình; /giaithich <dòng> <chữ> — khi viết chữ đó mô hình nhìn vào đâu.
/top — những bài được nhiều người khác chấm cao nhất.
/xoadulieu — xoá dữ liệu của bạn.
Giới hạn: mỗi người một bài một lúc, tối đa {{per_minute}} bài mỗi phút; số bản nháp × số chùm × số khổ \
không quá {{max_work}}; bài nào quá {{timeout}} giây thì bị huỷ.""".format(
    bot=BOT_NAME,
    names="nhietdo, topk, topp, lapphat, ngram, chienluoc, sochum, ungvien, hatgiong, the, van, kho, congkhai, kyten",
    forms=", ".join(f"{f.id} ({f.title})" for f in FORMS.values()),
    schemes=" | ".join(f"{k} ({v})" for k, v in SCHEME_TITLES.items()),
)

THO_USAGE = "Bạn hãy viết câu mở đầu sau lệnh, ví dụ: /tho Mùa thu lá vàng rơi"

# Why an opening line was refused; keys are engine.request.InvalidRequest codes.
OPENING_ERRORS = {
    "empty": THO_USAGE,
    "too_long": "Câu mở đầu dài quá ({length} ký tự). Bạn viết ngắn lại, tối đa {limit} ký tự nhé.",
    "not_vietnamese": "Mình chỉ làm thơ tiếng Việt. Bạn hãy viết câu mở đầu bằng tiếng Việt có dấu, "
    "ví dụ: Mùa thu lá vàng rơi",
    "unknown_form": "Mình không biết thể thơ '{form}'. Các thể: {forms}.",
    "stanzas": "Số khổ phải từ {low} đến {high}.",
    "opening_too_long_for_form": "Câu mở đầu có {syllables} chữ, dài hơn một dòng thơ {form_title} "
    "(tối đa {limit} chữ). Bạn viết ngắn lại hoặc đổi thể thơ bằng /caidat the <thể>.",
}

RATE_LIMITED = "Bạn làm thơ nhanh quá! Nghỉ tay {seconds} giây rồi thử lại nhé."
BUSY = "Mình đang làm bài thơ trước của bạn, đợi chút nhé."
OVERLOADED = "Mình đang bận làm thơ cho nhiều người quá. Bạn thử lại sau ít giây nhé."
DRAWING_BUSY = "Mình đang vẽ tranh cho nhiều người quá. Bạn thử lại sau ít giây nhé."
POEM_TIMEOUT = (
    "Bài thơ này lâu quá (hơn {seconds:g} giây) nên mình dừng lại. Bạn thử lại, hoặc giảm số bản nháp, "
    "số chùm hay số khổ trong /caidat nhé."
)
TOO_HEAVY = (
    "Cài đặt này nặng quá: {candidates} bản nháp × {beams} chùm × {stanzas} khổ = {work}, tối đa {limit}. "
    "Bạn giảm ungvien, sochum hoặc kho nhé."
)
APOLOGY = "Xin lỗi, mình gặp trục trặc khi làm thơ. Bạn thử lại sau ít phút nhé."

# Pictures (bot/picture.py): the poem card and /giaithich.
EXPLAIN_TITLE = "Mô hình chắc đến đâu ở từng chữ"
LEGEND_LOW = "ít chắc"
LEGEND_HIGH = "rất chắc"
LEGEND_OPENING = "lời mở đầu của bạn"
FOCUS_TITLE = "Khi viết «{syllable}» (dòng {line}, chữ {index}), mô hình nhìn vào:"
FOCUS_NOTHING_BEFORE = "(đây là chữ đầu tiên, trước nó chưa có gì)"
EXPLAIN_FOOTER = "mô hình {version} · trung bình {mean} ở các chữ mô hình viết"
INLINE_HINT = "Gõ câu mở đầu, mình làm thơ cho bạn"
PICTURE_BUTTON = "🖼 Tranh"
CONSOLE_PICTURE = "[ảnh đã lưu: {path}]"
PICTURE_CAPTION = "🖼 {title}"
PICTURE_UNTITLED = "Không đề"  # the title of a poem card whose opening is its whole first line
PICTURE_AUTHOR = "{bot}"
PICTURE_AUTHOR_SIGNED = "{name} · {bot}"
EXPLAIN_CAPTION = (
    "Mỗi chữ tô màu theo độ chắc của mô hình (đỏ: ít chắc, xanh: rất chắc; xám: lời mở đầu của bạn). "
    "Ít chắc nhất: {least}.\nXem mô hình nhìn vào đâu khi viết một chữ: /giaithich <dòng> <chữ>, "
    "ví dụ /giaithich {example}"
)
EXPLAIN_FOCUS_CAPTION = "Khi viết «{syllable}» (dòng {line}, chữ {index}), mô hình nhìn nhiều nhất vào: {top}."
EXPLAIN_USAGE = "Cách dùng: /giaithich, hoặc /giaithich <dòng> <chữ>, ví dụ /giaithich 2 3."
EXPLAIN_NO_SUCH = "Bài thơ vừa rồi có {lines} dòng; dòng {line} có {count} chữ. Ví dụ: /giaithich 2 3."
EXPLAIN_NO_SUCH_LINE = "Bài thơ vừa rồi có {lines} dòng. Ví dụ: /giaithich 2 3."
EXPLAIN_UNAVAILABLE = "Mô hình đã viết bài này ({version}) không giải thích được từng chữ."
STREAM_WRITING = "✍️ đang viết…"  # under a poem shown line by line while it is written
POEM_FOOTER = "— {form_title}, nhiệt độ {temperature:g}, hạt giống {seed}"
RATED_NEW = "Cảm ơn bạn đã chấm {stars}★!"
RATED_CHANGED = "Đã đổi điểm từ {previous}★ thành {stars}★."
RATED_SAME = "Bạn đã chấm bài này {stars}★ rồi."
RATE_USAGE = "Bạn chấm từ 1 đến 5 sao, ví dụ: /danhgia 5"
NO_POEM_YET = "Bạn chưa có bài thơ nào. Gõ /tho <câu mở đầu> để bắt đầu."
POEM_NOT_FOUND = "Không tìm thấy bài thơ này (có thể đã bị xoá)."

SETTINGS_TITLE = "Cài đặt của bạn:"
SETTING_LINE = "• {name} ({label}): {value}{default}"
SETTING_DEFAULT_MARK = " (mặc định)"
SETTING_MODEL_DEFAULT = "theo mô hình"
SETTINGS_HINT = "Đổi: /caidat <tên> <giá trị>, ví dụ /caidat nhietdo 0.9. Đặt lại: /caidat macdinh"
SETTING_SAVED = "Đã lưu: {label} = {value}."
SETTINGS_RESET = "Đã đặt lại mọi cài đặt về mặc định."
RESET_TAKES_NO_NAME = (
    "/caidat macdinh đặt lại mọi cài đặt, không kèm tên. Để đặt lại một cài đặt: /caidat {name} macdinh"
)
SETTING_UNKNOWN = "Không có cài đặt '{name}'. Các tên: {names}."
SETTING_BAD_VALUE = "Giá trị '{value}' không hợp lệ cho {label}. Hợp lệ: {valid}."
SETTING_NEEDS_VALUE = "Bạn cho mình giá trị nhé, ví dụ: /caidat {name} {example}"
YES_NO = {True: "có", False: "không"}

SETTING_LABELS = {
    "temperature": "nhiệt độ",
    "top_k": "top-k",
    "top_p": "top-p",
    "repetition_penalty": "phạt lặp từ",
    "no_repeat_ngram_size": "cấm lặp cụm n từ",
    "strategy": "chiến lược",
    "num_beams": "số chùm (beam)",
    "candidates": "số bản nháp để chọn",
    "seed": "hạt giống",
    "form": "thể thơ",
    "scheme": "cách gieo vần",
    "stanzas": "số khổ",
    "public": "hiện bài trong /top",
    "signature": "ký tên bạn trên tranh thơ",
}
STRATEGY_LABELS = {"sample": "ngẫu nhiên", "greedy": "tham lam", "beam": "chùm (beam)"}

TEMPERATURE_PRESET_LABELS = {"ondinh": "Ổn định", "canbang": "Cân bằng", "baybong": "Bay bổng"}
RESET_BUTTON = "Đặt lại"
STANZAS_BUTTON = "{n} khổ"

TOP_TITLE = "Những bài thơ được yêu thích nhất (do người khác chấm):"
TOP_ITEM = "{rank}. {avg:.1f}★ ({count} lượt) — {form_title}\n{text}"
TOP_EMPTY = "Chưa có bài thơ nào được chấm điểm."

DELETE_CONFIRM = "Bạn chắc chắn muốn xoá toàn bộ dữ liệu của mình (cài đặt, bài thơ, điểm)? Không thể hoàn tác."
DELETE_YES = "Xoá hết"
DELETE_NO = "Thôi"
DELETED = "Đã xoá dữ liệu của bạn: {poems} bài thơ, {ratings} lượt chấm, {settings} cài đặt."
DELETE_CANCELLED = "Đã huỷ, dữ liệu của bạn vẫn còn nguyên."

UNKNOWN_COMMAND = "Mình không hiểu lệnh này. Gõ /giupdo để xem hướng dẫn."
UNKNOWN_ACTION = "Nút này không còn dùng được nữa."
NOT_YOUR_BUTTON = "Nút này không phải của bạn."

# Admin commands (THO_ADMINS only; everyone else gets UNKNOWN_COMMAND).
ADMIN_COMMAND_DESCRIPTIONS = {
    "trangthai": "Quản trị: trạng thái mô hình và hàng đợi",
    "mohinh": "Quản trị: các phiên bản mô hình, chọn, quay lại",
}
STATUS = (
    "Trạng thái {bot}:\n"
    "• Mô hình đang dùng: {version}\n"
    "• Chỉ số: {metrics}\n"
    "• 24 giờ qua: {poems} bài thơ, {ratings} lượt chấm, {users} người dùng\n"
    "• Đang làm: {in_flight} bài (tối đa {max_in_flight} cùng lúc)"
)
NO_METRICS = "chưa có"
MODELS_TITLE = "Các phiên bản mô hình (mới nhất trước):"
MODEL_LINE = "{mark} {version} — {status}; {metrics}"
MODEL_STATUS_LABELS = {
    "serving": "đang dùng",
    "candidate": "ứng viên",
    "retired": "đã thôi dùng",
    "rejected": "bị loại",
}
MODELS_HINT = "Chọn: /mohinh chon <phiên bản>. Quay lại bản trước: /mohinh quaylai"
MODELS_EMPTY = "Chưa có phiên bản mô hình nào."
MODEL_USAGE = "Cách dùng: /mohinh, /mohinh chon <phiên bản>, /mohinh quaylai"
MODEL_UNKNOWN = "Không có phiên bản '{version}'. Gõ /mohinh để xem danh sách."
MODEL_ALREADY = "Phiên bản {version} đang được dùng rồi."
MODEL_REJECTED = "Phiên bản {version} đã bị loại ở bước kiểm tra; mình không dùng nó."
MODEL_UNREADABLE = "Không đọc được mô hình {version} ở {path}; vẫn dùng {current}."
MODEL_NO_PREVIOUS = "Không có phiên bản nào trước đó để quay lại."
MODEL_SWAPPED = "Đã chuyển sang mô hình {version} (trước đó: {previous}). Các bot khác chuyển theo trong vài giây."

# Start-up errors (operator-facing, both languages: the operator may not read Vietnamese).
MISSING_TOKEN = "Thiếu biến môi trường {name} / Missing environment variable {name}: {hint}"
DB_UNUSABLE = "Không dùng được cơ sở dữ liệu (THO_DB) / database unusable (THO_DB): {reason}"
MODEL_NOT_SYLLABLE = (
    "Mô hình ở {path} không viết theo từng tiếng (mỗi token một âm tiết), nên không giữ được thể thơ.\n"
    "The model at {path} is not syllable-level (one token per syllable). Run `make model` to train one."
)
NO_MODEL = (
    "Chưa có mô hình ở {path}. Chạy `make model` để huấn luyện, hoặc đặt THO_MODEL=<thư mục mô hình>.\n"
    "No model at {path}. Run `make model` to train one, or set THO_MODEL=<model directory>."
)


def form_title(form_id: str) -> str:
    form = FORMS.get(form_id)
    return form.title if form else form_id


def scheme_title(scheme: object) -> str:
    """A rhyme scheme as users read it; none set means each form's own default."""
    return SCHEME_TITLES.get(str(scheme), "theo thể thơ") if scheme else "theo thể thơ"


def stars(chosen: int | None, n: int) -> str:
    """Label of the n-th rating button: "n★" until rated, then filled stars up to the rating."""
    if chosen is None:
        return f"{n}★"
    return "⭐" if n <= chosen else "☆"


# Reports to the Telegram admin chat (TELEGRAM_ADMIN_CHAT), operator-facing.
ADMIN_ERROR = "⚠️ Lỗi khi xử lý tin nhắn / error handling an update\n{update}\n\n{trace}"
ADMIN_POEM_FAILED = "⚠️ Không làm được thơ cho {user} / writing a poem failed (see the log)"

# Discord slash-command options (descriptions at most 100 characters).
DISCORD_OPTION_DESCRIPTIONS = {
    "cau_dau": "Câu mở đầu bài thơ, ví dụ: Mùa thu lá vàng rơi",
    "the": "Thể thơ (bỏ trống: tự chọn theo độ dài câu mở đầu)",
    "nhietdo": "Nhiệt độ: thấp thì ổn định, cao thì bay bổng",
    "topk": "Chỉ chọn trong k từ khả dĩ nhất (0: tắt)",
    "topp": "Chỉ chọn trong nhóm từ có tổng xác suất p",
    "lapphat": "Phạt lặp từ (1: không phạt)",
    "ngram": "Cấm lặp cụm n từ (0: tắt)",
    "chienluoc": "Chiến lược chọn từ",
    "sochum": "Số chùm khi dùng chiến lược chùm",
    "ungvien": "Số bản nháp để chọn bài hay nhất",
    "hatgiong": "Hạt giống (cùng hạt giống, cùng bài thơ)",
    "van": "Cách gieo vần (thơ 5, 7, 8 chữ)",
    "kho": "Số khổ thơ",
    "congkhai": "Cho bài của bạn hiện trong /top (khi được người khác chấm)",
    "kyten": "Ký tên bạn dưới tranh thơ (🖼, /anh)",
    "hanh_dong": "Việc cần làm",
    "phien_ban": "Phiên bản mô hình",
    "macdinh": "Đặt lại mọi cài đặt về mặc định",
    "sao": "Số sao (1-5)",
    "dong": "Dòng thơ (1 là dòng đầu)",
    "chu": "Chữ thứ mấy trong dòng",
}
