"""The Tk window: one root that shows the connect form or the chat, and
implements :class:`chatgui.app.controller.View` by forwarding to them.

It owns the :class:`~chatgui.tk.pump.Pump` that carries network events into
the controller, the app-wide keys (Ctrl+Q, Ctrl+plus/minus/0, Ctrl+Shift+T
for the theme, Ctrl+PgUp/PgDn and Alt+1..9 for the rooms), the rooms
browser (:class:`~chatgui.tk.room_browser.RoomBrowser`), focus tracking for the unread count, and closing: the window's
close button, Ctrl+Q and ``/quit`` all end in :meth:`ChatWindow.quit`,
which stops the pump, tells the controller (which disconnects without
blocking) and destroys the root; ``mainloop`` then returns.

Tk callback errors go to :meth:`report_callback_exception`, and errors in
Tcl's own scripts (Tcl's ``bgerror``) to :meth:`_tcl_background_error`;
both log them and keep them in :attr:`errors` (the GUI tests fail on any).

Thread: the Tk thread only. Network threads never see this object; they
only ``put`` on the controller's queue.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
import tkinter as tk

from chatgui.app import emoji, formatting
from chatgui.app.controller import Controller
from chatgui.app.view import APP_NAME, ConnectValues, Line, RoomPowers, RoomSettings
from chatgui.tk import theme
from chatgui.tk import cards
from chatgui.tk.chatpane import ATTACH_TIP_NO_DROP, ChatPane
from chatgui.tk.dnd import enable_drop
from chatgui.tk.connect_form import ConnectForm
from chatgui.tk.pump import Pump
from chatgui.tk.room_browser import RoomBrowser
from chatgui.tk.room_settings import RoomSettingsDialog
from chatgui.tk.settings_dialog import SettingsDialog

log = logging.getLogger("natter.client")

DEFAULT_GEOMETRY = "980x640"
MIN_SIZE = (560, 380)


class ChatWindow:
    def __init__(self, settings, *, root: tk.Tk | None = None, controller_class=Controller, **controller_kw):
        """``controller_class(view, settings, **controller_kw)`` makes the
        controller (tests give a subclass that records what the window calls)."""
        self.root = root or tk.Tk(className=APP_NAME)
        self.root.withdraw()
        self.errors: list[str] = []
        self.root.report_callback_exception = self.report_callback_exception
        # Errors in Tcl's own scripts (a widget's class binding, say) never
        # pass through Python's callback wrapper: Tcl hands them to bgerror.
        self.root.tk.createcommand("bgerror", self._tcl_background_error)
        self.closed = False
        self._focused = True
        self.root.title(APP_NAME)
        self.root.minsize(*MIN_SIZE)
        try:
            self.root.geometry(settings.geometry or DEFAULT_GEOMETRY)
        except tk.TclError:
            self.root.geometry(DEFAULT_GEOMETRY)
        self._set_icon()
        self.fonts = theme.Fonts(self.root, settings.font_size)
        self.pal = theme.palette(settings.theme)
        theme.apply_style(self.root, self.pal, self.fonts)
        controller_kw.setdefault("astral_ok", formatting.astral_supported(
            self.root.tk.call("info", "patchlevel")))
        controller_kw.setdefault("emoji_ok", emoji.available())
        self.controller = controller_class(self, settings, **controller_kw)
        self.form = ConnectForm(self.root, self.fonts, on_submit=self.controller.connect,
                                on_trust=self.controller.trust_certificate,
                                history_note=self.controller.history_note,
                                recent=lambda: self.controller.settings.recent)
        self.chat = ChatPane(self.root, self.fonts, self.pal, self.controller, on_settings=self.open_settings)
        self.browser: RoomBrowser | None = None
        self.room_settings: RoomSettingsDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.fingerprint: str | None = None     # this computer's identity (set_identity)
        self._showing = None
        self.form.card.bind("<Configure>", self._fit_form, add="+")
        self.pump = Pump(self.root, lambda: self.controller.events, self.controller.handle,
                         before_batch=self.chat.before_batch, after_batch=self._after_batch)
        self._bind_keys()
        # Issue 12: files dropped anywhere on the conversation screen are sent.
        self.drop_problem = enable_drop(self.root, (self.chat,), lambda paths: self.controller.attach(paths))
        if self.drop_problem:           # the reason is in the log; the user is told only what to do instead
            self.chat.attach_tip.text = ATTACH_TIP_NO_DROP
        self.root.protocol("WM_DELETE_WINDOW", self.quit)
        self.root.bind("<Destroy>", self._on_destroy, add="+")

    def _set_icon(self) -> None:
        """The app icon, from a PyInstaller bundle's ``icons/`` or the
        source tree's ``packaging/icons/``; without one Tk's default stays."""
        here = os.path.dirname(os.path.abspath(__file__))
        folders = [os.path.join(os.path.dirname(os.path.dirname(here)), "packaging", "icons")]
        if getattr(sys, "_MEIPASS", None):
            folders.insert(0, os.path.join(sys._MEIPASS, "icons"))
        for folder in folders:
            images = []
            for name in ("natter.png", "natter-48.png"):
                path = os.path.join(folder, name)
                if os.path.exists(path):
                    try:
                        images.append(tk.PhotoImage(master=self.root, file=path))
                    except tk.TclError as e:
                        log.warning("cannot load the icon %s: %s", path, e)
            if images:
                self._icons = images        # keep them alive
                self.root.iconphoto(True, *images)
                return

    # -- running -------------------------------------------------------------

    def start(self, values: ConnectValues | None = None) -> None:
        """Show the window and start the pump (tests call this, not run)."""
        self.controller.begin(values)
        self.root.deiconify()
        self.pump.start()
        if self.controller.emoji_ok:
            emoji.warm_up()

    def run(self, values: ConnectValues | None = None) -> None:
        """Start and block in ``mainloop`` until the window is closed."""
        self.start(values)
        self.root.mainloop()

    def quit(self) -> None:
        """Close the window cleanly; idempotent."""
        if self.closed:
            return
        self.closed = True
        self.pump.stop()
        geometry = None
        try:
            if self.root.state() == "normal":
                geometry = self.root.winfo_geometry().split("+")[0]
        except tk.TclError:
            pass
        try:
            self.controller.close(geometry)
        finally:
            try:
                self.root.destroy()
            except tk.TclError:     # already destroyed (see _on_destroy)
                pass

    def _on_destroy(self, event) -> None:
        """The X window was destroyed under us (``xdotool windowclose``):
        close as the close button would, minus destroying it again."""
        if event.widget is self.root and not self.closed:
            self.closed = True
            self.pump.stop()
            self.controller.close()

    def report_callback_exception(self, exc, value, tb) -> None:
        text = "".join(traceback.format_exception(exc, value, tb))
        self.errors.append(text)
        log.error("error in a Tk callback:\n%s", text)

    def _tcl_background_error(self, message="") -> None:
        try:
            info = self.root.tk.globalgetvar("errorInfo")
        except tk.TclError:
            info = ""
        text = f"Tcl background error: {message}\n{info}"
        self.errors.append(text)
        log.error("%s", text)

    # -- keys and focus ----------------------------------------------------------

    def _bind_keys(self) -> None:
        r = self.root
        r.bind_all("<Control-q>", lambda e: self.quit())
        r.bind_all("<Control-Q>", lambda e: self.quit())
        for seq in ("<Control-plus>", "<Control-equal>", "<Control-KP_Add>"):
            r.bind_all(seq, lambda e: self.controller.zoom(+1))
        for seq in ("<Control-minus>", "<Control-KP_Subtract>"):
            r.bind_all(seq, lambda e: self.controller.zoom(-1))
        r.bind_all("<Control-0>", lambda e: self.controller.zoom(0))
        # Ctrl+Shift+T: plain Ctrl+T already transposes letters in a Tk Text.
        r.bind_all("<Control-T>", lambda e: self.controller.toggle_theme())
        # Rooms: Ctrl+PgUp/PgDn the previous/next one, Alt+1..9 by place.
        r.bind_all("<Control-Prior>", lambda e: self._next_room(-1))
        r.bind_all("<Control-Next>", lambda e: self._next_room(+1))
        for n in range(1, 10):
            r.bind_all(f"<Alt-Key-{n}>", lambda e, n=n: self._room_at(n))
        r.bind("<FocusIn>", self._on_focus_event, add="+")
        r.bind("<FocusOut>", self._on_focus_event, add="+")
        r.bind("<KeyPress>", self._stray_key, add="+")

    def _stray_key(self, e):
        """A key that reached the window itself on the chat screen goes to
        the message box. Tk hands a window that just got the focus to its
        focus widget only some 100 ms later (measured under Xvfb): what was
        typed first was lost. Keys of the other widgets pass by (the
        window's tag is in every widget's bindtags)."""
        if e.widget is not self.root or self._showing is not self.chat or not e.char or not e.char.isprintable():
            return None
        self.chat.type_into_input(e.char)
        return "break"

    def _next_room(self, step: int):
        """Ctrl+PgUp/PgDn: the controller names the room, the switch carries the draft."""
        if self._showing is self.chat:
            self._switch_to(self.controller.next_room(step))
        return "break"

    def _room_at(self, n: int):
        if self._showing is self.chat:
            self._switch_to(self.controller.room_at(n))
        return "break"

    def _switch_to(self, room: str | None) -> None:
        if room is not None:
            self.controller.switch_room(room, self.chat.get_input())

    def _on_focus_event(self, event=None) -> None:
        # Focus moves between our own widgets too; only a change of the
        # application's focus as a whole matters, so look once things settle.
        self.root.after_idle(self._check_focus)

    def _check_focus(self) -> None:
        if self.closed:
            return
        try:
            focused = self.root.focus_get() is not None
        except (KeyError, tk.TclError):
            focused = True
        if focused != self._focused:
            self._focused = self.chat.focused = focused
            self.controller.focus_changed(focused)

    def _after_batch(self, n: int) -> None:
        self.chat.after_batch(n)
        self.controller.tick()

    # -- View ---------------------------------------------------------------------

    def _show(self, which) -> None:
        if self._showing is which:
            return
        if self._showing is not None:
            self._showing.pack_forget()
        which.pack(fill="both", expand=True)
        self._showing = which

    def show_connect(self, values: ConnectValues, error: str | None, busy: str | None,
                     focus: str | None = None, trust: str | None = None,
                     trust_label: str | None = None) -> None:
        self._show(self.form)
        self.form.show(values, error, busy, focus, trust, trust_label)
        self.root.after_idle(self._fit_form)

    def _fit_form(self, event=None) -> None:
        """A long warning must not push the buttons out of a small window:
        the window is at least as big as the form wants (measured when the
        form's card is laid out again)."""
        if not self.closed and self._showing is self.form:
            self.root.minsize(max(MIN_SIZE[0], self.form.winfo_reqwidth()),
                              max(MIN_SIZE[1], self.form.winfo_reqheight()))

    def run_doctor(self, host: str, port: int, tls: bool, nick: str | None, password: str | None) -> None:
        self.form.run_doctor(host, port, tls, nick, password)

    def show_chat(self) -> None:
        self._show(self.chat)
        self.root.minsize(*MIN_SIZE)
        self.chat.set_address(self.controller.address)
        self.chat.input.focus_set()

    def set_rooms(self, rooms, active: str) -> None:
        self.chat.set_rooms(rooms, active)

    def show_room(self, room: str, title: str, topic: str) -> None:
        self.chat.show_room(room, title, topic)

    def forget_room(self, room: str) -> None:
        self.chat.forget_room(room)

    def append(self, line: Line, room: str | None = None) -> None:
        self.chat.append(line, room)

    def prepend(self, room: str, lines, more: bool) -> None:
        self.chat.prepend(room, lines, more)

    def extend(self, room: str, lines, live: bool) -> None:
        self.chat.extend(room, lines, live)

    def arrived_below(self, room: str) -> None:
        self.chat.arrived_below(room)

    def set_unread_marker(self, room: str, msg_id: int | None) -> None:
        self.chat.set_unread_marker(room, msg_id)

    def show_room_browser(self, rooms) -> None:
        if self.browser is not None and self.browser.alive:
            self.browser.set_rooms(rooms)
            return
        lock = self.chat.emoji_images.photo("1F512") if self.controller.emoji_ok else None
        self.browser = RoomBrowser(self.root, self.fonts, self.pal, rooms, on_join=self.controller.join_room,
                                   lock_image=lock)

    def add_pending(self, key: str, line: Line, room: str | None = None) -> None:
        self.chat.add_pending(key, line, room)

    def remove_pending(self, key: str) -> None:
        self.chat.remove_pending(key)

    def clear(self, room: str | None = None) -> None:
        self.chat.clear(room)

    def set_users(self, users, me: str, online: bool = True, roles: dict | None = None) -> None:
        self.chat.set_users(users, me, online, roles)

    def update_line(self, room: str, msg_id: int, line: Line) -> None:
        self.chat.update_line(room, msg_id, line)

    def set_powers(self, room: str, powers: RoomPowers) -> None:
        self.chat.set_powers(room, powers)

    def set_questions(self, room: str, questions) -> None:
        self.chat.set_questions(room, questions)

    def show_room_settings(self, settings: RoomSettings) -> None:
        """The room settings dialog (one at a time: a new one replaces it)."""
        if self.room_settings is not None:
            self.room_settings.close()
        self.room_settings = RoomSettingsDialog(self.root, self.fonts, self.pal, settings,
                                                on_apply=self.controller.apply_room_settings)

    def set_identity(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        if self.settings_dialog is not None and self.settings_dialog.alive:
            self.settings_dialog.set_fingerprint(fingerprint)

    def open_settings(self) -> None:
        """The header's Settings…: this computer's identity fingerprint."""
        if self.settings_dialog is not None and self.settings_dialog.alive:
            self.settings_dialog.top.lift()
            return
        self.settings_dialog = SettingsDialog(self.root, self.fonts, self.pal, self.fingerprint,
                                              on_copy=self.copy_text,
                                              picture_mib=self.controller.settings.auto_image_bytes / 1024 ** 2,
                                              on_picture_mib=self.controller.set_auto_image_mib)

    # -- files (issue 12) -----------------------------------------------------

    def update_card(self, card) -> None:
        self.chat.update_card(card)

    def show_transfer(self, transfer) -> None:
        self.chat.show_transfer(transfer)

    def end_transfer(self, tid: str) -> None:
        self.chat.end_transfer(tid)

    def ask_save_path(self, name: str, folder: str) -> str | None:
        from tkinter import filedialog
        path = filedialog.asksaveasfilename(parent=self.root, title="Save the file as", initialdir=folder,
                                            initialfile=name)
        return path or None

    def ask_files(self):
        from tkinter import filedialog
        return list(filedialog.askopenfilenames(parent=self.root, title="Send files") or ())

    def show_picture(self, title: str, png: bytes) -> None:
        cards.show_picture(self.root, title, png, self.pal)

    def copy_text(self, text: str) -> None:
        self.root.clipboard_clear()
        self.root.clipboard_append(text)

    def set_status(self, text: str, state: str, action: str | None = None) -> None:
        self.chat.set_status(text, state, action)
        self.chat.set_address(self.controller.address)

    def set_title(self, title: str) -> None:
        try:
            self.root.title(title)
        except (tk.TclError, UnicodeError):
            self.root.title(title.encode("ascii", "replace").decode("ascii"))

    def bell(self) -> None:
        self.root.bell()

    def set_input(self, text: str, cursor: int | None = None) -> None:
        self.chat.set_input(text, cursor)

    def set_theme(self, name: str) -> None:
        self.pal = theme.palette(name)
        theme.apply_style(self.root, self.pal, self.fonts)
        self.chat.apply_palette(self.pal)
        if self.browser is not None and self.browser.alive:
            self.browser.apply_palette(self.pal)

    def set_font_size(self, size: int) -> None:
        if size != self.fonts.size:
            self.fonts.resize(size)
            self.chat.fonts_changed()
