(function(){
  var ms=('mediaSession' in navigator)?navigator.mediaSession:null;
  var web=/^https?:$/.test(location.protocol)&&('serviceWorker' in navigator);
  var cur=null, shown=null;  // the session playing (or last played); the chapter its metadata shows
  function card(el){return el.closest('.session');}
  function audios(){return Array.prototype.slice.call(document.querySelectorAll('.session audio'));}
  function buttons(c){return Array.prototype.slice.call(c.querySelectorAll('button[data-t]'));}
  function at(b){return parseFloat(b.getAttribute('data-t'));}
  function play(a){var p=a.play(); if(p&&p.catch){p.catch(function(){});}}
  function jump(a,t){
    if(a.readyState>=1){a.currentTime=t; position(a);}
    else{a.addEventListener('loadedmetadata',function(){a.currentTime=t; position(a);},{once:true});}
  }
  function seek(a,t){jump(a,t); play(a);}
  function chapter(c,t){  // the button of the chapter playing at t, or null
    var now=null;
    buttons(c).forEach(function(b){if(at(b)<=t+0.05){now=b;}});
    return now;
  }
  function starts(c){  // chapter starts, for the lock screen's previous/next (a session is one chapter at least)
    var s=buttons(c).map(at);
    if(!s.length||s[0]>0){s.unshift(0);}
    return s;
  }
  function art(c){
    var list=[], b=document.body;
    function add(src,sizes,type){if(src){list.push({src:new URL(src,location.href).href,sizes:sizes,type:type});}}
    add(c.getAttribute('data-art'),c.getAttribute('data-art-sizes')||'1400x1400',c.getAttribute('data-art-type')||'image/png');
    add(c.getAttribute('data-thumb'),c.getAttribute('data-thumb-sizes')||'300x300',c.getAttribute('data-thumb-type')||'image/jpeg');
    add(b.getAttribute('data-cover'),b.getAttribute('data-cover-sizes')||'1400x1400','image/png');
    return list;
  }
  function metadata(a,force){
    if(!ms||!window.MediaMetadata||a!==cur){return;}
    var c=card(a), b=chapter(c,a.currentTime);
    if(!force&&b===shown){return;}
    shown=b;
    var title=c.getAttribute('data-title')||'', album=document.body.getAttribute('data-album')||'';
    var name=b?b.lastElementChild.textContent:'';
    ms.metadata=new MediaMetadata(name?{title:name,artist:title,album:album,artwork:art(c)}
      :{title:title,artist:c.getAttribute('data-artist')||'',album:album,artwork:art(c)});
  }
  function position(a){
    if(!ms||!ms.setPositionState||a!==cur){return;}
    var d=a.duration;
    if(!isFinite(d)||!(d>0)){return;}
    try{ms.setPositionState({duration:d,playbackRate:a.playbackRate||1,position:Math.min(Math.max(a.currentTime,0),d)});}
    catch(e){}
  }
  function mark(a){
    var b=chapter(card(a),a.currentTime);
    buttons(card(a)).forEach(function(o){
      if(o===b){o.setAttribute('aria-current','true');}else{o.removeAttribute('aria-current');}
    });
  }
  function neighbour(a,step){var list=audios(); return list[list.indexOf(a)+step]||null;}
  function start(a){seek(a,0); card(a).scrollIntoView({block:'nearest'});}

  document.addEventListener('click',function(ev){
    var b=ev.target.closest('button[data-t]'); if(!b){return;}
    seek(card(b).querySelector('audio'),at(b));
  });
  document.addEventListener('play',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    audios().forEach(function(o){if(o!==a){o.pause();}});
    var d=card(a).querySelector('details'); if(d){d.open=true;}
    cur=a; metadata(a,true); position(a);
    if(ms){ms.playbackState='playing';}
    save(a);
  },true);
  document.addEventListener('pause',function(ev){
    var a=ev.target; if(a!==cur){return;}
    if(ms){ms.playbackState='paused';} position(a);
  },true);
  document.addEventListener('timeupdate',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    mark(a); metadata(a,false);
  },true);
  ['seeked','ratechange','durationchange','loadedmetadata'].forEach(function(name){
    document.addEventListener(name,function(ev){if(ev.target===cur){metadata(cur,false); position(cur);}},true);
  });

  // Play the next session when one ends (remembered on this device)
  var KEY='audiogen:autonext', box=document.getElementById('autonext');
  if(box){
    try{var v=localStorage.getItem(KEY); if(v!==null){box.checked=v==='1';}}catch(e){}
    box.addEventListener('change',function(){try{localStorage.setItem(KEY,box.checked?'1':'0');}catch(e){}});
  }
  document.addEventListener('ended',function(ev){
    var a=ev.target; if(a.tagName!=='AUDIO'){return;}
    var n=box&&box.checked?neighbour(a,1):null;
    if(n){start(n);}else if(ms&&a===cur){ms.playbackState='paused';}
  },true);

  // The lock screen as a remote: chapters are its tracks
  function handle(name,fn){
    if(!ms){return;}
    try{ms.setActionHandler(name,function(details){var a=cur||audios()[0]; if(a){fn(a,details||{});}});}catch(e){}
  }
  function by(a,dt){
    var d=isFinite(a.duration)?a.duration:Infinity;
    jump(a,Math.min(Math.max(a.currentTime+dt,0),d));
  }
  handle('play',function(a){play(a);});
  handle('pause',function(a){a.pause();});
  handle('stop',function(a){a.pause();});
  handle('seekbackward',function(a,d){by(a,-(d.seekOffset||10));});
  handle('seekforward',function(a,d){by(a,d.seekOffset||30);});
  handle('seekto',function(a,d){
    if(typeof d.seekTime!=='number'){return;}
    if(d.fastSeek&&a.fastSeek){a.fastSeek(d.seekTime); position(a);}else{jump(a,d.seekTime);}
  });
  handle('nexttrack',function(a){
    var s=starts(card(a)), t=a.currentTime;
    for(var i=0;i<s.length;i++){if(s[i]>t+0.05){jump(a,s[i]); return;}}
    var n=neighbour(a,1); if(n){a.pause(); start(n);}
  });
  handle('previoustrack',function(a){
    var s=starts(card(a)), t=a.currentTime, i=s.length-1;
    while(i>0&&s[i]>t+0.05){i--;}
    if(t-s[i]>3){jump(a,s[i]); return;}      // well into a chapter: back to its start
    if(i>0){jump(a,s[i-1]); return;}
    var p=neighbour(a,-1); if(p){a.pause(); start(p);}else{jump(a,0);}
  });

  // Offline: a service worker keeps the page, its covers and every session played (http(s) only)
  var note=document.getElementById('offline');
  function saved(names){
    audios().forEach(function(a){
      var s=card(a).querySelector('.saved'); if(s&&names.indexOf(a.getAttribute('src'))>=0){s.hidden=false;}
    });
  }
  function save(a){
    if(!web){return;}
    if(navigator.storage&&navigator.storage.persist){navigator.storage.persist().catch(function(){});}
    navigator.serviceWorker.ready.then(function(r){if(r.active){r.active.postMessage({save:a.getAttribute('src')});}});
  }
  if(web){
    navigator.serviceWorker.addEventListener('message',function(ev){
      if(ev.data&&ev.data.saved){saved(ev.data.saved);}
    });
    if(navigator.serviceWorker.startMessages){navigator.serviceWorker.startMessages();}
    window.addEventListener('load',function(){
      navigator.serviceWorker.register('sw.js').then(function(){return navigator.serviceWorker.ready;})
        .then(function(r){
          if(r.active){r.active.postMessage({ask:1});}
          if(note){note.textContent='Sessions you play are kept on this device, to play offline.'; note.hidden=false;}
        }).catch(function(){});
    });
  }

  var f=document.getElementById('feedurl');
  if(f){f.value=new URL(f.getAttribute('data-href'),location.href).href;
    f.addEventListener('focus',function(){f.select();});}
})();
