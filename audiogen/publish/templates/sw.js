// audiogen's service worker: the page, its manifest and covers work offline, and so does every session
// played (kept whole, answered with byte ranges so the player can seek). Written by `audiogen build`.
'use strict';
var VERSION = '$version';
var PRECACHE = $precache;  // besides the page itself, relative to the scope
var MEDIA = $media;        // MP3 -> revision (size and mtime): a changed file is fetched again
var SCOPE = self.registration.scope;
var PREFIX = 'audiogen ' + SCOPE + ' ';
var PAGE = PREFIX + 'page ' + VERSION;
var STORE = PREFIX + 'media';
var saving = {};

function key(name) { return SCOPE + name + '?rev=' + MEDIA[name]; }
function relative(url) {  // a URL's path inside the scope (undecoded), or null
  var u = new URL(url), base = new URL(SCOPE);
  return u.origin === base.origin && u.pathname.indexOf(base.pathname) === 0
    ? u.pathname.slice(base.pathname.length) : null;
}

self.addEventListener('install', function (ev) {
  ev.waitUntil(caches.open(PAGE).then(function (c) {
    return c.addAll([SCOPE].concat(PRECACHE.map(function (n) { return SCOPE + n; })));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (ev) {
  var wanted = Object.keys(MEDIA).map(key);
  ev.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) {
      return n.indexOf(PREFIX) === 0 && n !== PAGE && n !== STORE;
    }).map(function (n) { return caches.delete(n); }));
  }).then(function () {
    return caches.open(STORE);
  }).then(function (c) {
    return c.keys().then(function (reqs) {
      return Promise.all(reqs.filter(function (r) { return wanted.indexOf(r.url) < 0; })
        .map(function (r) { return c.delete(r); }));
    });
  }).then(function () { return self.clients.claim(); }));
});

function savedNames() {
  return caches.open(STORE).then(function (c) { return c.keys(); }).then(function (reqs) {
    var have = reqs.map(function (r) { return r.url; });
    return Object.keys(MEDIA).filter(function (n) { return have.indexOf(key(n)) >= 0; });
  });
}

function tell(client) {
  return savedNames().then(function (names) {
    if (client) { client.postMessage({ saved: names }); return; }
    return self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (all) {
      all.forEach(function (c) { c.postMessage({ saved: names }); });
    });
  });
}

function save(name) {
  if (!Object.prototype.hasOwnProperty.call(MEDIA, name)) { return Promise.resolve(); }
  if (!saving[name]) {
    saving[name] = caches.open(STORE).then(function (c) {
      return c.match(key(name)).then(function (hit) {
        if (hit) { return; }
        return fetch(SCOPE + name, { cache: 'no-store' }).then(function (r) {
          if (r.status !== 200) { throw new Error('not saved: ' + r.status); }
          return c.put(key(name), r);
        });
      });
    }).then(function () { return tell(null); }).catch(function () {}).then(function () { delete saving[name]; });
  }
  return saving[name];
}

self.addEventListener('message', function (ev) {
  var d = ev.data || {};
  if (typeof d.save === 'string') { ev.waitUntil(save(d.save)); }
  if (d.ask) { ev.waitUntil(tell(ev.source)); }
});

// A byte range of a cached file, as the server would answer it (the media element needs 206 to seek).
function ranged(resp, range) {
  return resp.blob().then(function (blob) {
    var size = blob.size, type = resp.headers.get('Content-Type') || 'audio/mpeg';
    var m = /^bytes=(\d*)-(\d*)\s*/.exec((range || '').trim());
    var whole = { 'Content-Type': type, 'Content-Length': String(size), 'Accept-Ranges': 'bytes' };
    if (!m || (m[1] === '' && m[2] === '') || range.indexOf(',') >= 0) {
      return new Response(blob, { status: 200, headers: whole });
    }
    var first, last;
    if (m[1] === '') { first = Math.max(0, size - parseInt(m[2], 10)); last = size - 1; }
    else { first = parseInt(m[1], 10); last = m[2] === '' ? size - 1 : Math.min(parseInt(m[2], 10), size - 1); }
    if (last < first) { return new Response(blob, { status: 200, headers: whole }); }
    if (first >= size || size === 0) {
      return new Response('', { status: 416, statusText: 'Range Not Satisfiable',
        headers: { 'Content-Range': 'bytes */' + size } });
    }
    return new Response(blob.slice(first, last + 1), { status: 206, statusText: 'Partial Content', headers: {
      'Content-Type': type, 'Content-Length': String(last - first + 1), 'Accept-Ranges': 'bytes',
      'Content-Range': 'bytes ' + first + '-' + last + '/' + size } });
  });
}

function media(req, name) {
  return caches.open(STORE).then(function (c) { return c.match(key(name)); }).then(function (hit) {
    return hit ? ranged(hit, req.headers.get('Range')) : fetch(req);
  });
}

// The page: from the network when it answers (a rebuilt library shows at once), else the cached copy.
function page(req) {
  return caches.open(PAGE).then(function (c) {
    var net = fetch(req).then(function (r) {
      if (r.status === 200 && r.type === 'basic' && !r.redirected) { c.put(SCOPE, r.clone()); }
      return r;
    });
    net.catch(function () {});
    var slow = new Promise(function (done) { setTimeout(done, 4000); }).then(function () {
      return c.match(SCOPE).then(function (r) { return r || net; });
    });
    return Promise.race([net, slow]).catch(function () {
      return c.match(SCOPE).then(function (r) { return r || Response.error(); });
    });
  });
}

function cached(req) {
  return caches.match(req, { cacheName: PAGE }).then(function (r) { return r || fetch(req); });
}

self.addEventListener('fetch', function (ev) {
  var req = ev.request;
  if (req.method !== 'GET') { return; }
  var name = relative(req.url);
  if (name === null) { return; }
  if (Object.prototype.hasOwnProperty.call(MEDIA, name)) { ev.respondWith(media(req, name)); return; }
  if (name === '' || name === 'index.html') { ev.respondWith(page(req)); return; }
  if (PRECACHE.indexOf(name) >= 0) { ev.respondWith(cached(req)); }
});
